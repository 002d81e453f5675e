import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../src/host/paths.ts";

/**
 * The pipeline's folders, bottom up: a module imports only from its own folder or from a lower rank, so a
 * parser or the kernel stage can never reach the CLI or the runner. Folders of one rank do not import each
 * other.
 */
const RANK: Record<string, number> = {
  common: 0,
  host: 1,
  arch: 2,
  parse: 2,
  kernel: 3,
  selftests: 4,
  guest: 4,
  report: 5,
  history: 6,
  run: 7,
  matrix: 8,
  bisect: 8,
  bench: 8,
  lava: 8,
  cli: 9,
};

const src = join(projectRoot, "src");

function imports(): { from: string; to: string }[] {
  const out: { from: string; to: string }[] = [];
  for (const dir of readdirSync(src))
    for (const f of readdirSync(join(src, dir))) {
      const file = join(src, dir, f);
      for (const m of readFileSync(file, "utf8").matchAll(/from "(\.{1,2}\/[^"]+)"/g))
        out.push({ from: `${dir}/${f}`, to: relative(src, resolve(dirname(file), m[1] ?? "")) });
    }
  return out;
}

describe("source layout", () => {
  it("src/ holds only the pipeline's folders", () => {
    expect(readdirSync(src).sort()).toEqual(Object.keys(RANK).sort());
  });

  it("no module imports a later stage, the runner or the CLI", () => {
    const bad = imports().filter(({ from, to }) => {
      const [a = "", b = ""] = [from.split("/")[0], to.split("/")[0]];
      return a !== b && (RANK[b] ?? 99) >= (RANK[a] ?? -1);
    });
    expect(bad.map((i) => `${i.from} -> ${i.to}`)).toEqual([]);
  });
});
