import { readFileSync } from "node:fs";
import { z } from "zod";
import { archNames } from "../arch/arch.ts";
import { KhilError } from "../common/errors.ts";
import { parseYamlFile } from "../common/yaml.ts";
import { isPackagedKernel } from "../kernel/tree.ts";
import type { CellAxes } from "../run/cell.ts";
import { DEFAULT_FLAVOUR, unknownFlavour } from "../selftests/tree-lists.ts";

/** A variant: Kconfig fragments, or fragments and kernel command-line parameters (a JIT mode's sysctls). */
const VariantSchema = z.union([
  z.array(z.string()).transform((config) => ({ config, append: [] as string[] })),
  z.strictObject({ config: z.array(z.string()).default([]), append: z.array(z.string()).default([]) }),
]);

const MatrixSchema = z.strictObject({
  arch: z.array(z.string()).min(1),
  kernel: z.array(z.string()).min(1),
  suite: z.array(z.string()).min(1),
  variant: z.record(z.string(), VariantSchema).default({ default: { config: [], append: [] } }),
  /** Patch series applied onto each kernel (`--series`): a name for each, then an mbox, directory or range. */
  series: z.record(z.string(), z.string()).optional(),
  /** test_progs flavours (selftests/tree-lists.ts): each cell once per flavour, named by it unless plain. */
  flavour: z.array(z.string()).min(1).default([DEFAULT_FLAVOUR]),
  /** Each cell's tests split over this many guests at once (run/shards.ts), on this machine. */
  shards: z.number().int().min(1).max(16).optional(),
});
export type Matrix = z.infer<typeof MatrixSchema>;

export interface Cell extends CellAxes {
  variant: string;
}

export function loadMatrix(file: string): Matrix {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new KhilError(`cannot read matrix file ${file}`);
  }
  const m = parseYamlFile(file, text, MatrixSchema);
  const valid = archNames();
  const bad = m.arch.filter((a) => !valid.includes(a));
  if (bad.length)
    throw new KhilError(`${file}: unknown arch ${bad.join(", ")}: valid are ${valid.join(", ")}`);
  for (const f of m.flavour) {
    const unknown = unknownFlavour(f);
    if (unknown) throw new KhilError(`${file}: flavour: ${unknown}`);
  }
  return m;
}

/** Cell names become directory names: a path on an axis is named by its last component. */
function lastComponent(p: string): string {
  return p.split("/").filter(Boolean).pop() ?? p;
}

function kernelLabel(k: string): string {
  return isPackagedKernel(k) ? k : lastComponent(k);
}

/** Every combination of the axes, in a stable order: kernel, series, variant, suite, then arch. */
export function expandMatrix(m: Matrix): Cell[] {
  const cells: Cell[] = [];
  const series = m.series ? Object.entries(m.series).map(([name, path]) => ({ name, path })) : [undefined];
  for (const kernel of m.kernel)
    for (const s of series)
      for (const [variant, { config: fragments, append }] of Object.entries(m.variant))
        for (const suite of m.suite)
          for (const flavour of m.flavour)
            for (const arch of m.arch) {
              const plain = flavour === DEFAULT_FLAVOUR;
              cells.push({
                name: [
                  arch,
                  kernelLabel(kernel),
                  ...(s ? [s.name] : []),
                  lastComponent(suite).replace(/\.yaml$/, ""),
                  variant,
                  ...(plain ? [] : [flavour]),
                ].join("-"),
                arch,
                kernel,
                suite,
                variant,
                fragments,
                append,
                ...(s ? { series: s } : {}),
                ...(plain ? {} : { flavour }),
                ...((m.shards ?? 1) > 1 ? { shards: m.shards } : {}),
              });
            }
  return cells;
}
