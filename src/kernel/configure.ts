import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { InfraError, KhilError } from "../common/errors.ts";
import { keyFileMatches } from "../host/key-file.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir, projectRoot } from "../host/paths.ts";
import { type ConfigMap, canonicalConfig, compareConfig, mergeRequests, parseConfig } from "./kconfig.ts";
import { explainMismatch } from "./kconfig-lang.ts";
import { kernelMakeEnv } from "./make.ts";
import { firstError } from "./make-output.ts";
import { type KernelTree, loadKconfigDb, versionLess } from "./tree.ts";

export const BASE_FRAGMENTS = ["common.config", "bpf-timer.config"];

/**
 * The fragments of a build: `first` (the tree's selftests config, advisory), khil's own, the arch's (some
 * only from a kernel version on), then the suite's and the user's, later ones winning: what khil's verdicts
 * rest on (BTF, the unwinder, DWARF for decoding) is never overridden by a tree's fragment.
 */
export function fragmentPaths(
  arch: Arch,
  kernelVersion: string,
  extra: readonly string[],
  first: readonly string[] = [],
): string[] {
  const since = arch.fragmentsSince
    .filter((f) => !versionLess(kernelVersion, f.since))
    .flatMap((f) => f.fragments);
  const own = [...BASE_FRAGMENTS, arch.configFragment, ...since].map((f) =>
    join(projectRoot, "kernel-config", f),
  );
  // A suite may name one of khil's own fragments again: merge each file once.
  return [...new Set([...first.map((f) => resolve(f)), ...own, ...extra.map((f) => resolve(f))])];
}

function readFragment(path: string): ConfigMap {
  try {
    return parseConfig(readFileSync(path, "utf8"));
  } catch (e) {
    throw new KhilError(`cannot read config fragment ${path}: ${(e as Error).message}`);
  }
}

export function shortHash(s: string, n = 12): string {
  return createHash("sha256").update(s).digest("hex").slice(0, n);
}

/** The files whose content decides what olddefconfig makes of the same fragments. */
const KCONFIG_INPUTS = [
  ":(glob)**/Kconfig*",
  "Makefile",
  ":(glob)arch/*/Makefile",
  ":(glob)scripts/kconfig/**",
];

/**
 * What identifies the state of some of a tree's files: for a clean git tree, the blobs under `inputs` (so
 * that bisect steps between commits that change none of them skip the work they feed), or the package
 * version of a tree khil extracted itself (those are never edited). Any other tree: undefined, do the work.
 */
export async function treeStamp(path: string, inputs: readonly string[]): Promise<string | undefined> {
  // A packaged tree made a git repository (the bisect tests do) is checked out at other commits: git first.
  if (!existsSync(join(path, ".git")))
    return path.startsWith(join(cacheDir(), "trees")) ? `packaged:${path}` : undefined;
  const dirty = await execa("git", ["-C", path, "status", "--porcelain", "--untracked-files=no"], {
    reject: false,
  });
  const blobs = await execa("git", ["-C", path, "ls-files", "-s", "--", ...inputs], {
    reject: false,
  });
  if (blobs.exitCode !== 0 || dirty.exitCode !== 0 || dirty.stdout.trim()) return undefined;
  return `git:${path}:${shortHash(blobs.stdout, 32)}`;
}

export interface ConfigStep {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** tinyconfig, the fragments through the tree's merge_config.sh, olddefconfig: run in the tree. */
export function configSteps(
  treePath: string,
  outDir: string,
  vars: string[],
  fragments: string[],
): ConfigStep[] {
  const config = join(outDir, ".config");
  return [
    { cmd: "make", args: ["-s", "-C", treePath, `O=${outDir}`, ...vars, "tinyconfig"], env: {} },
    {
      cmd: "bash",
      args: [join(treePath, "scripts/kconfig/merge_config.sh"), "-m", "-O", outDir, config, ...fragments],
      env: { KCONFIG_CONFIG: config },
    },
    { cmd: "make", args: ["-s", "-C", treePath, `O=${outDir}`, ...vars, "olddefconfig"], env: {} },
  ];
}

export interface Configured {
  configText: string;
  configHash: string;
  treeKey: string;
  /** Options of advisory fragments that did not land, each with its fragment and the reason. */
  unmet: string[];
}

/**
 * The tree configured for `arch` with `fragments`, every request checked against the final .config. A
 * request that did not land fails the build, unless the last fragment to make it is one of `advisory` (the
 * tree's own selftests fragments, written for a full config and for bpf-next): those are said, with the
 * reason, in `unmet`, unless another fragment asks for the option too.
 */
export async function configure(
  tree: KernelTree,
  arch: Arch,
  fragments: string[],
  runDir: string,
  advisory: readonly string[] = [],
): Promise<Configured> {
  const maps = fragments.map(readFragment);
  const requested = mergeRequests(maps);
  const soft = new Set(advisory.map((f) => resolve(f)));
  // An option any other fragment asks for is that fragment's: it must land, whatever an advisory one says.
  const strict = new Set(
    maps.flatMap((m, i) => (soft.has(resolve(fragments[i] ?? "")) ? [] : [...m.keys()])),
  );
  const setBy = new Map<string, string>();
  maps.forEach((m, i) => {
    for (const k of m.keys()) setBy.set(k, fragments[i] ?? "");
  });
  const treeKey = shortHash(tree.path, 10);
  const stage = join(cacheDir(), "builds", `${arch.name}-${treeKey}-kconfig`);
  mkdirSync(stage, { recursive: true });
  const { vars, env } = kernelMakeEnv(arch);
  const logFile = join(runDir, `kconfig-${arch.name}.log`);
  const out = createWriteStream(logFile, { flags: "a" });
  // The same fragments on the same tree state give the same config: skip the three make steps then.
  const stamp = await treeStamp(tree.path, KCONFIG_INPUTS);
  const key = stamp
    ? shortHash(JSON.stringify([fragments, fragments.map((f) => readFileSync(f, "utf8")), vars, stamp]), 32)
    : undefined;
  const keyFile = join(stage, "khil-config-key");
  // The .config is read inside the lock: another run with other fragments rewrites it as soon as it is free.
  const configText = await withLock(stage, "configuring", async () => {
    if (!keyFileMatches(keyFile, key, join(stage, ".config"))) {
      rmSync(keyFile, { force: true });
      // merge_config.sh is run from the tree: it finds the tree's Makefile relative to its working directory.
      for (const s of configSteps(tree.path, stage, vars, fragments)) {
        const p = execa(s.cmd, s.args, {
          cwd: tree.path,
          env: { ...env, ...s.env },
          reject: false,
          all: true,
        });
        p.all?.pipe(out, { end: false });
        const r = await p;
        if (r.exitCode !== 0)
          throw new InfraError(
            `${s.cmd} ${s.args.join(" ")} failed (see ${logFile}): ${firstError(String(r.all ?? "")) ?? ""}`,
            "config",
          );
      }
      if (key) writeFileSync(keyFile, key);
    }
    return readFileSync(join(stage, ".config"), "utf8");
  });
  out.end();
  const final = parseConfig(configText);
  const mismatches = compareConfig(requested, final);
  const db = mismatches.length > 0 ? loadKconfigDb(tree.path, arch.srcArch) : undefined;
  const said = (m: (typeof mismatches)[number]) => (db ? explainMismatch(m, db, final) : m.symbol);
  const fatal = mismatches.filter((m) => strict.has(m.symbol));
  if (fatal.length > 0)
    throw new KhilError(
      `${fatal.length} requested option${fatal.length > 1 ? "s" : ""} did not land (nothing was compiled):\n  ${fatal.map(said).join("\n  ")}`,
    );
  const unmet = mismatches.map((m) => `${basename(setBy.get(m.symbol) ?? "")}: ${said(m)}`);
  return { configText, configHash: shortHash(canonicalConfig(final)), treeKey, unmet };
}
