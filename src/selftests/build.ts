import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { endianness } from "node:os";
import { basename, join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { archMakeVars, compilerTool } from "../arch/toolchain.ts";
import { elfSection } from "../common/elf.ts";
import { InfraError, KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { Progress } from "../common/progress.ts";
import { keyFileMatches } from "../host/key-file.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir } from "../host/paths.ts";
import { requireTools } from "../host/tools.ts";
import { treeStamp } from "../kernel/configure.ts";
import type { KernelBuild } from "../kernel/kbuild.ts";
import { REPRODUCIBLE, runMake } from "../kernel/make.ts";
import { firstError } from "../kernel/make-output.ts";
import { type CrossSysroot, crossSysroot } from "./cross-sysroot.ts";
import {
  isBuildArtefact,
  makefileDefines,
  makefilePrograms,
  planSelftests,
  testsDeclared,
  type UnbuiltProgTest,
  unbuiltReason,
  unmatchedSelections,
} from "./plan.ts";
import { PROBES_DIR, probeSources } from "./probes.ts";
import { DEFAULT_FLAVOUR } from "./tree-lists.ts";

const BPF_DIR = "tools/testing/selftests/bpf";
const hostEndian = endianness() === "LE" ? "little" : "big";
const LLVM_VERSION = "19";

export interface SelftestsBuild {
  /** The directory holding test_progs, bpf_testmod.ko and the BPF objects, where push globs are resolved. */
  dir: string;
  /** Selected prog_tests the tree cannot build, left out of test_progs (plan.ts). */
  unbuilt: UnbuiltProgTest[];
}

/**
 * The source files of the tree's selftests/bpf, relative to it: git's own list where the tree is a git
 * repository, else every file but what a build in the tree leaves there (test_progs, objects, skeletons,
 * vmlinux.h): a user's in-tree build must not leak into khil's.
 */
async function sourceFiles(treePath: string): Promise<string[]> {
  const src = join(treePath, BPF_DIR);
  const git = await execa("git", ["-C", src, "ls-files", "-z", "."], { reject: false });
  if (git.exitCode === 0 && git.stdout) return git.stdout.split("\0").filter(Boolean);
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(src, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (!isBuildArtefact(r, statSync(join(src, r)).mode)) files.push(r);
    }
  };
  walk("");
  return files;
}

/**
 * A tree that is the kernel tree everywhere (symlinks) except tools/testing/selftests/bpf, which is a real
 * copy holding only the selected prog_tests and the BPF programs they need; make writes its output there.
 * A file the previous copy had and this tree does not (a bisect step back) is removed.
 */
async function prepareShadow(
  treePath: string,
  shadow: string,
  keep: (rel: string) => boolean,
): Promise<string> {
  const parts = BPF_DIR.split("/");
  for (let depth = 0; depth < parts.length; depth++) {
    const rel = parts.slice(0, depth).join("/");
    const dir = join(shadow, rel);
    mkdirSync(dir, { recursive: true });
    for (const entry of readdirSync(join(treePath, rel))) {
      if (entry === parts[depth]) continue;
      const link = join(dir, entry);
      if (!existsSync(link)) symlinkSync(join(treePath, rel, entry), link);
    }
  }
  const out = join(shadow, BPF_DIR);
  mkdirSync(out, { recursive: true });
  const files = (await sourceFiles(treePath)).filter(keep);
  const list = join(shadow, "files.txt");
  const before = existsSync(list) ? readFileSync(list, "utf8").split("\n").filter(Boolean) : [];
  const now = new Set(files);
  for (const f of before) if (!now.has(f)) rmSync(join(out, f), { force: true });
  writeFileSync(list, `${files.join("\n")}\n`);
  // rsync compares size and mtime and keeps mtimes, so make rebuilds only what changed in the tree.
  await execa("rsync", ["-a", `--files-from=${list}`, `${join(treePath, BPF_DIR)}/`, `${out}/`]);
  return out;
}

/** The `.c` files of one of the tree's selftests/bpf directories by name (without `.c`), with their text. */
function readSources(treePath: string, sub: "prog_tests" | "progs"): Map<string, string> {
  const dir = join(treePath, BPF_DIR, sub);
  return new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith(".c"))
      .map((f) => [f.slice(0, -2), sub === "progs" ? "" : readFileSync(join(dir, f), "utf8")] as const),
  );
}

/** The plan of a selftests build of the prog_tests matching `progTestGlobs`, from the tree's sources. */
function treePlan(treePath: string, progTestGlobs: readonly string[]) {
  const sources = readSources(treePath, "prog_tests");
  const makefile = readFileSync(join(treePath, BPF_DIR, "Makefile"), "utf8");
  const programs = [...readSources(treePath, "progs").keys()];
  return { ...planSelftests(progTestGlobs, sources, programs, makefile), sources, makefile, programs };
}

/**
 * Refuses, before anything is built, a `--test` selection that names no test of those the suite's
 * selftests build would hold: a typo should cost a second, not a kernel build.
 */
export function checkTestSelection(treePath: string, progTestGlobs: string[], selections: string[]): void {
  // A tree without the selftests is reported by the selftests build, with its stage.
  if (!existsSync(join(treePath, BPF_DIR, "prog_tests"))) return;
  const tests = declaredTests(treePath, progTestGlobs);
  const unknown = unmatchedSelections(selections, tests);
  if (!unknown.length) return;
  const unbuilt = treePlan(treePath, progTestGlobs).unbuilt.filter(
    (u) => unmatchedSelections(unknown, u.tests).length < unknown.length,
  );
  throw new KhilError(
    unbuilt.length
      ? `--test ${unknown.join(", ")}: ${unbuilt.map(unbuiltReason).join("; ")}`
      : `--test ${unknown.join(", ")} matches no test the suite builds (prog_tests ${progTestGlobs.join(", ")}): valid are ${nearest(unknown, tests).join(", ")}`,
  );
}

/** Up to this many valid names in an error; a whole selftests build has some 600. */
const NAMES_SHOWN = 30;

/** Pairs of adjacent letters: names that share many are alike (a typo keeps most of them). */
function bigrams(s: string): string[] {
  return Array.from({ length: Math.max(0, s.length - 1) }, (_, i) => s.slice(i, i + 2));
}

/** How alike two names are (Dice's coefficient of their letter pairs), 0 to 1. */
function alike(a: string, b: string): number {
  const x = bigrams(a);
  const y = bigrams(b);
  const left = [...y];
  let shared = 0;
  for (const g of x) {
    const i = left.indexOf(g);
    if (i >= 0) {
      shared++;
      left.splice(i, 1);
    }
  }
  return x.length + y.length ? (2 * shared) / (x.length + y.length) : 0;
}

/** The valid names an error shows: all of a few; of many, the ten most like what was given. */
export function nearest(given: readonly string[], names: readonly string[]): string[] {
  if (names.length <= NAMES_SHOWN) return [...names];
  const stems = given.map((g) => (g.split("/")[0] ?? g).replace(/[*?[]/g, ""));
  const score = (n: string) => Math.max(...stems.map((g) => alike(g, n)));
  const best = [...names].sort((a, b) => score(b) - score(a) || a.localeCompare(b)).slice(0, 10);
  return [...best, `... ${names.length - best.length} more (test_progs -l lists them)`];
}

/** The tests test_progs holds when built from these prog_tests: what its `-l` would list. */
export function declaredTests(treePath: string, progTestGlobs: readonly string[]): string[] {
  const plan = treePlan(treePath, progTestGlobs);
  return testsDeclared(plan.progTests.map((name) => plan.sources.get(name) ?? ""));
}

/** The tree's files a selftests build reads: its own sources, libbpf and bpftool, and for bpf_testmod kbuild and the headers. */
const SOURCE_INPUTS = ["Makefile", "include", "scripts", "tools"];

/**
 * Everything the selftests build depends on, when it can be told without running make: the kernel only
 * through its BTF (vmlinux.h), its config and its exported symbols (bpf_testmod), and the tree's files above.
 * A bisect step that changed only kernel code then skips make's walk of the selftests (~2 s). Undefined
 * (always make) for a tree whose state cannot be named (not git, or with uncommitted changes).
 */
async function selftestsInputs(
  arch: Arch,
  build: KernelBuild,
  probeSourcesHash: string,
  cross: CrossSysroot | undefined,
): Promise<string | undefined> {
  const tree = await treeStamp(build.tree, [
    ...SOURCE_INPUTS,
    `arch/${arch.srcArch}/include`,
    `arch/${arch.srcArch}/Makefile`,
  ]);
  const btf = existsSync(build.vmlinux) ? elfSection(build.vmlinux, ".BTF") : undefined;
  const symvers = join(build.buildDir, "Module.symvers");
  if (!tree || !btf || !existsSync(symvers)) return undefined;
  return createHash("sha256")
    .update(
      JSON.stringify([tree, build.configHash, build.release, LLVM_VERSION, probeSourcesHash, cross?.stamp]),
    )
    .update(btf)
    .update(readFileSync(symvers))
    .digest("hex");
}

/** What a suite builds from the tree's selftests/bpf: test_progs with the prog_tests matching `progTests`, and khil's probes. */
export interface SelftestsWhat {
  progTests?: string[];
  /** Names of directories of probes/, each with a probe.mk that the selftests Makefile builds beside test_progs. */
  probes: string[];
  /** Other programs of the selftests Makefile (test_maps, test_verifier), built beside test_progs. */
  programs?: string[];
  /** A test_progs flavour (tree-lists.ts): `test_progs-<flavour>` is built instead, its objects in <flavour>/. */
  flavour?: string;
}

export async function buildSelftests(
  arch: Arch,
  build: KernelBuild,
  what: SelftestsWhat,
  runDir: string,
  timeoutMs: number,
): Promise<SelftestsBuild> {
  const clang = `clang-${LLVM_VERSION}`;
  await requireTools([
    clang,
    `llc-${LLVM_VERSION}`,
    `ld.lld-${LLVM_VERSION}`,
    "rsync",
    "pkg-config",
    compilerTool(arch),
    ...(arch.qemuUser ? [{ command: arch.qemuUser, pkg: "qemu-user" }] : []),
  ]);
  const cross = await crossSysroot(arch);
  const src = join(build.tree, BPF_DIR);
  const progTestGlobs = what.progTests ?? [];
  const { progTests, progs, unbuilt, makefile } = treePlan(build.tree, progTestGlobs);
  const unknown = (what.programs ?? []).filter((p) => !makefileDefines(makefile, p));
  if (unknown.length)
    throw new InfraError(
      `build.programs ${unknown.join(", ")}: ${src}/Makefile defines no such program (it has ${makefilePrograms(makefile).join(", ")})`,
      "selftests",
    );
  // What is left out is not in the key: the same tests built are the same build.
  const plan = {
    progTests,
    progs,
    probes: what.probes,
    ...(what.programs ? { programs: what.programs } : {}),
  };
  if (what.progTests && plan.progTests.length === 0)
    throw new InfraError(
      `no prog_tests in ${src} match ${progTestGlobs.join(", ")}: the suite's build.progTests selects nothing${unbuilt.length ? ` it can build (${unbuilt.map(unbuiltReason).join("; ")})` : ""}`,
      "selftests",
    );
  for (const u of unbuilt) log(`${arch.name} selftests: ${unbuiltReason(u)}; left out`);
  // The probes' sources are in the inputs, not in the directory's name: an edit rebuilds in place.
  const key = createHash("sha256").update(JSON.stringify(plan)).digest("hex").slice(0, 10);
  const dir = join(cacheDir(), "selftests", `${basename(build.srcDir)}-${key}`);
  const logFile = join(runDir, `selftests-${arch.name}.log`);
  const inputs = await selftestsInputs(arch, build, probeSources(what.probes), cross);
  // One key per target: a flavour built later must not make an earlier target's binary look current.
  const keyFile = (target: string) => join(dir, `khil-inputs.${target}.key`);
  return withLock(dir, "building the selftests", async () => {
    const out = join(dir, "tree", BPF_DIR);
    const runner =
      what.flavour && what.flavour !== DEFAULT_FLAVOUR ? `test_progs-${what.flavour}` : "test_progs";
    const targets = [...(what.progTests ? [runner] : []), ...(what.programs ?? []), ...what.probes];
    if (targets.every((t) => keyFileMatches(keyFile(t), inputs, join(out, t)))) {
      log(
        `${arch.name} selftests: up to date (the kernel's BTF and the sources they are built from unchanged)`,
      );
      return { dir: out, unbuilt };
    }
    for (const t of targets) rmSync(keyFile(t), { force: true });
    const shadow = join(dir, "tree");
    const keepTests = new Set(plan.progTests.map((t) => `prog_tests/${t}.c`));
    const keepProgs = new Set(plan.progs.map((p) => `progs/${p}.c`));
    // A test dropped from the selection leaves the copy, and with it the build.
    await prepareShadow(build.tree, shadow, (rel) => {
      if (rel.startsWith("prog_tests/") && rel.endsWith(".c")) return keepTests.has(rel);
      if (rel.startsWith("progs/") && rel.endsWith(".c")) return keepProgs.has(rel);
      // the generated list of tests would name tests that are not copied
      return rel !== "prog_tests/tests.h";
    });
    if (what.progTests)
      log(
        `building ${runner} for ${arch.name} from ${plan.progTests.length} prog_tests and ${plan.progs.length} BPF programs`,
      );
    if (what.probes.length) log(`building ${what.probes.join(", ")} for ${arch.name}`);
    const llvmBin = `/usr/lib/llvm-${LLVM_VERSION}/bin`;
    const vars = [
      ...archMakeVars(arch),
      `VMLINUX_BTF=${build.vmlinux}`,
      // bpf_testmod.ko is linked by kbuild like the kernel: the same bytes for the same kernel.
      ...REPRODUCIBLE,
      ...(cross ? [`CLANG=clang --target=${arch.clangTarget} ${cross.clangFlags.join(" ")}`] : []),
    ];
    const progress = new Progress(`building ${arch.name} selftests`);
    let steps = 0;
    const make = async (makeTargets: string[], extra: string[] = []) => {
      const r = await runMake({
        args: [
          "-C",
          out,
          "-j2",
          "-f",
          "Makefile",
          ...what.probes.flatMap((p) => ["-f", join(PROBES_DIR, p, "probe.mk")]),
          ...vars,
          ...extra,
          ...makeTargets.map((t) => join(out, t)),
        ],
        env: {
          PATH: [cross?.binDir, llvmBin, process.env.PATH].filter(Boolean).join(":"),
          KDIR: build.buildDir,
        },
        logFile,
        timeoutMs,
        onLine: () => progress.update(`${++steps} steps`),
      });
      if (r.timedOut) {
        progress.done("stopped");
        throw new InfraError(
          `timeout: selftests build after ${Math.round(timeoutMs / 1000)} s (log: ${logFile})`,
          "selftests",
        );
      }
      if (r.exitCode !== 0) {
        progress.done("failed");
        const err = firstError(readFileSync(logFile, "utf8"));
        throw new InfraError(
          `selftests build failed: ${err ?? `make exited ${r.exitCode}`} (log: ${logFile})`,
          "selftests",
        );
      }
    };
    // The guest's own bpftool first (the Makefile's CROSS_BPFTOOL), then everything linked with it.
    const guestBpftool = cross && arch.endian !== hostEndian ? await cross.guestBpftool(out) : undefined;
    if (guestBpftool) await make([guestBpftool.target]);
    await make(targets, guestBpftool ? [`BPFTOOL=${guestBpftool.wrapper}`] : []);
    progress.done(
      `built ${targets.map((t) => `${t} (${(statSync(join(out, t)).size / 1e6).toFixed(1)} MB)`).join(", ")}`,
    );
    if (inputs) for (const t of targets) writeFileSync(keyFile(t), inputs);
    return { dir: out, unbuilt };
  });
}
