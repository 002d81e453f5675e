import { existsSync, readdirSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import type { Arch } from "../arch/arch.ts";
import { KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { parseYamlFile } from "../common/yaml.ts";
import { projectRoot } from "../host/paths.ts";
import { versionLess } from "../kernel/tree.ts";
import { PARSERS } from "../parse/dispatch.ts";
import { probeNames } from "../selftests/probes.ts";
import { DEFAULT_FLAVOUR, type TreeDeny, treeDenylist } from "../selftests/tree-lists.ts";

const DenySchema = z.strictObject({
  tests: z.array(z.string()).min(1),
  arch: z.string().optional(),
  kernelBelow: z
    .string()
    .regex(/^\d+\.\d+$/, "a kernel version such as 6.4")
    .optional(),
  /** Only where the guest's JIT is on or off (bpf_jit_enable read back from it). */
  jit: z.enum(["on", "off"]).optional(),
  reason: z.string().min(1),
});

/** Where khil puts a kselftest install in the guest, and the runner it runs there. */
export const KSELFTEST_DIR = "kselftest";
const KSELFTEST_RUNNER = `${KSELFTEST_DIR}/run_kselftest.sh`;

const CommandSchema = z
  .strictObject({
    // The name becomes part of log file names in the run directory.
    name: z.string().regex(/^[A-Za-z0-9][\w.-]*$/, "letters, digits, '.', '_' and '-' only"),
    run: z.array(z.string()).min(1).optional(),
    /** A kselftest target of `build.kselftest`, run by kselftest's own runner with its settings. */
    kselftest: z
      .string()
      .regex(/^[\w.-]+(\/[\w.-]+)*$/, "a kselftest target such as timers")
      .optional(),
    /** Environment of the command: e.g. a kselftest program's options, KSELFTEST_<NAME>_ARGS. */
    env: z.record(z.string().regex(/^[A-Za-z_]\w*$/, "an environment variable name"), z.string()).optional(),
    /** This command's selection, where it differs from the suite's (a suite of test_progs and kselftest). */
    tests: z.array(z.string()).min(1).optional(),
    timeout: z.number().positive().default(600),
    parser: z.enum(PARSERS).optional(),
    /**
     * The command takes the selected subtests of its test as arguments (khil's probes: `--test
     * timer_probe/cancel` runs `./timer_probe cancel`); its `tests` then name its test literally.
     */
    subtestArgs: z.boolean().optional(),
  })
  .refine((c) => !c.subtestArgs || (c.tests ?? []).every((t) => /^[\w.-]+$/.test(t)), {
    message: "subtestArgs needs tests naming the command's tests literally, without globs",
    path: ["tests"],
  })
  .refine((c) => (c.run === undefined) !== (c.kselftest === undefined), {
    message: "give either run (a command line) or kselftest (a target)",
  })
  .refine((c) => c.kselftest !== undefined || c.parser !== undefined, {
    message: "required with run: test_progs, ktap or exit-code",
    path: ["parser"],
  })
  .refine((c) => c.kselftest === undefined || c.parser === undefined || c.parser === "ktap", {
    message: "kselftest's runner prints KTAP: leave parser out or say ktap",
    path: ["parser"],
  })
  .transform((c) =>
    c.kselftest !== undefined
      ? { ...c, run: [KSELFTEST_RUNNER], parser: "ktap" as const, kselftest: c.kselftest }
      : { ...c, run: c.run ?? [], parser: c.parser ?? "exit-code" },
  );

const BuildSchema = z
  .strictObject({
    selftests: z.literal("bpf").optional(),
    progTests: z.array(z.string()).min(1).optional(),
    /**
     * Other programs of the tree's selftests Makefile built beside test_progs, from the same objects
     * (BPF CI's test_maps and test_verifier); pushed and run as the suite's push and commands say.
     */
    programs: z
      .array(z.string().regex(/^test_[\w-]+$/, "a program of the selftests Makefile, such as test_maps"))
      .min(1)
      .optional(),
    /** kselftest targets (`make -C tools/testing/selftests TARGETS=... install`), pushed to kselftest/. */
    kselftest: z
      .array(z.string().regex(/^[\w.-]+(\/[\w.-]+)*$/, "a kselftest target such as timers"))
      .min(1)
      .optional(),
    /** khil's own programs in probes/NAME, built by the selftests Makefile with the tree's libbpf and bpftool. */
    probes: z
      .array(z.string().regex(/^[\w.-]+$/, "a directory name of probes/"))
      .min(1)
      .optional(),
  })
  .refine((b) => (b.selftests === undefined) === (b.progTests === undefined), {
    message: "selftests: bpf and progTests go together",
  })
  .refine((b) => b.programs === undefined || b.progTests !== undefined, {
    message: "programs are built with test_progs: give selftests: bpf and progTests too",
    path: ["programs"],
  })
  .refine((b) => b.selftests !== undefined || b.kselftest !== undefined || b.probes !== undefined, {
    message: "build what: selftests: bpf (with progTests), kselftest: [targets] or probes: [names]",
  });

/** report/bounds.ts's Bound: a measurement's median held under a limit per accelerator. */
const BoundSchema = z.strictObject({
  test: z.string().regex(/^[\w.-]+(\/[\w.-]+)?$/, "a test or test/subtest, named literally"),
  measure: z.string().regex(/^\S+$/, "a measurement's name, as its khil-measure line gives it"),
  median: z
    .record(z.string().regex(/^[a-z]\w*$/, "an accelerator such as tcg or kvm"), z.number())
    .refine((m) => Object.keys(m).length > 0, "at least one accelerator's limit"),
  reason: z.string().min(1),
});

const SuiteSchema = z.strictObject({
  name: z.string(),
  /** What the suite is for, in the user's words: shown nowhere yet, but never refused. */
  description: z.string().optional(),
  config: z.array(z.string()).default([]),
  build: BuildSchema.optional(),
  push: z.array(z.string()).default([]),
  tests: z.array(z.string()).min(1),
  arch: z.record(z.string(), z.strictObject({ tests: z.array(z.string()).min(1) })).optional(),
  commands: z.array(CommandSchema).min(1),
  deny: z.array(DenySchema).default([]),
  /**
   * The tree's own BPF selftests lists, as BPF CI uses them (selftests/tree-lists.ts): `deny`, its DENYLIST
   * and DENYLIST.<arch> after the suite's own deny entries (which win); `config`, its selftests Kconfig
   * fragments after khil's and the suite's, where an option the tree cannot give is said, not fatal.
   */
  fromTree: z
    .strictObject({ deny: z.boolean().default(false), config: z.boolean().default(false) })
    .optional(),
  /** Tests that may skip themselves on every run without failing it (globs); any other self-skip fails a run in which nothing passed. */
  allowSkip: z.array(z.string()).default([]),
  /** Guests get at least this many CPUs' worth of tests: fewer online CPUs is a harness fault, not a skip. */
  minCpus: z.number().int().positive().default(1),
  /**
   * Under TCG, all the guest's vCPUs on one host thread (`-accel tcg,thread=single`) rather than one each:
   * slower, but the only way QEMU 7.2 keeps x86_64 kernel text patched under a running vCPU coherent
   * (measured: `Oops: int3` in text_poke_bp's static-key sites seconds into `test_progs -j`).
   */
  tcgSingleThread: z.boolean().default(false),
  /**
   * More of the guest's userland than images/base.yaml gives: Debian packages of the guest's architecture
   * and the programs copied from them (paths inside the package, where they land in the guest), their
   * libraries found as for the base image's. What the suite's tests run themselves (iproute2's ip and tc).
   */
  image: z
    .strictObject({
      packages: z.array(z.string()).min(1),
      programs: z
        .array(
          z
            .string()
            .regex(
              /^(?!\/)(?!.*(^|\/)\.\.(\/|$)).+$/,
              "a path inside the packages (bin/ip), without / first or ..",
            ),
        )
        .min(1),
    })
    .optional(),
  /** Deadlines in seconds for this suite's stages and whole run; CLI flags override them. */
  timeouts: z
    .strictObject({
      build: z.number().positive().optional(),
      boot: z.number().positive().optional(),
      push: z.number().positive().optional(),
      total: z.number().positive().optional(),
    })
    .optional(),
  /**
   * Tests whose SKIP can mean "inconclusive this time" (timer_lockup skips when its race did not happen in
   * 50 tries): rerun alone, up to `times`, and reported with every attempt.
   */
  rerunSkipped: z
    .strictObject({ tests: z.array(z.string()).min(1), times: z.number().int().min(1).max(10) })
    .optional(),
  /** Limits on what the tests measure: a breach fails the test the bound names (report/bounds.ts). */
  bounds: z.array(BoundSchema).default([]),
});

export type Suite = z.infer<typeof SuiteSchema> & { file: string };
export type DenyRule = z.infer<typeof DenySchema>;

const suitesDir = join(projectRoot, "suites");

export function suiteNames(): string[] {
  return readdirSync(suitesDir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** A suite by name (suites/NAME.yaml) or by path. */
export function loadSuite(nameOrPath: string): Suite {
  const file =
    nameOrPath.endsWith(".yaml") || nameOrPath.includes("/")
      ? nameOrPath
      : join(suitesDir, `${nameOrPath}.yaml`);
  if (!existsSync(file))
    throw new KhilError(
      `unknown suite '${nameOrPath}': valid are ${suiteNames().join(", ")} (or a path to a .yaml)`,
    );
  const suite = { ...parseYamlFile(file, readFileSync(file, "utf8"), SuiteSchema), file };
  const built = suite.build?.kselftest ?? [];
  for (const c of suite.commands)
    if (c.kselftest !== undefined && !built.includes(c.kselftest))
      throw new KhilError(
        `${file}: command ${c.name} runs kselftest target ${c.kselftest}, which build.kselftest does not build (${built.join(", ") || "it builds none"})`,
      );
  // A bound on a test no command runs would never be judged: a typo must not turn a bound off.
  for (const b of suite.bounds) {
    const test = b.test.split("/")[0] ?? b.test;
    const runs = suite.commands.flatMap((c) => c.tests ?? suite.tests);
    if (!matchesAny(test, runs))
      throw new KhilError(
        `${file}: bounds names ${b.test}, whose test ${test} no command of the suite runs (they run ${runs.join(", ")})`,
      );
  }
  for (const p of suite.build?.probes ?? [])
    if (!probeNames().includes(p))
      throw new KhilError(
        `${file}: build.probes names '${p}', which is not in probes/: valid are ${probeNames().join(", ")}`,
      );
  return suite;
}

/** A fragment named as suites and matrix variants name them: a file of kernel-config/, or a path. */
export function fragmentPath(name: string): string {
  return isAbsolute(name) || name.includes("/") ? resolve(name) : join(projectRoot, "kernel-config", name);
}

export function suiteFragments(s: Suite): string[] {
  return s.config.map(fragmentPath);
}

export interface Selection {
  tests: string[];
  /** Denied test patterns with the reason, for this arch and kernel. */
  denied: { pattern: string; reason: string }[];
}

/**
 * The suite as a test_progs flavour runs it: `./test_progs` becomes `./test_progs-<flavour>` (which changes
 * into its own <flavour>/ directory for its BPF objects, pushed beside it: run/cell.ts), in the commands
 * and the push list; the probes and any other command are the same in every flavour.
 */
export function withFlavour(s: Suite, flavour: string | undefined): Suite {
  if (!flavour || flavour === DEFAULT_FLAVOUR) return s;
  const bin = `test_progs-${flavour}`;
  return {
    ...s,
    push: s.push.map((p) => (p === "test_progs" ? bin : p)),
    commands: s.commands.map((c) =>
      c.parser === "test_progs" && c.run[0] === "./test_progs"
        ? { ...c, run: [`./${bin}`, ...c.run.slice(1)] }
        : c,
    ),
  };
}

/** The tree's deny entries a suite takes (`fromTree.deny`), for `arch`. */
export function treeDenyFor(s: Suite, treePath: string, arch: Arch): TreeDeny[] {
  return s.fromTree?.deny ? treeDenylist(treePath, arch) : [];
}

/**
 * Which tests a suite selects on one arch and kernel release (e.g. "6.1.192"), with the guest's JIT on or off;
 * `treeDeny` (treeDenyFor) denies after the suite's own entries.
 */
export function selectTests(
  s: Suite,
  arch: string,
  release: string,
  jit: "on" | "off" = "on",
  treeDeny: readonly TreeDeny[] = [],
): Selection {
  const tests = s.arch?.[arch]?.tests ?? s.tests;
  const denied = s.deny
    .filter(
      (d) =>
        (!d.arch || d.arch === arch) &&
        (!d.kernelBelow || versionLess(release, d.kernelBelow)) &&
        (!d.jit || d.jit === jit),
    )
    .flatMap((d) => d.tests.map((pattern) => ({ pattern, reason: d.reason.trim() })));
  return { tests, denied: [...denied, ...treeDeny] };
}

export function denyReason(sel: Selection, test: string): string | undefined {
  return sel.denied.find((d) => matchesAny(test, [d.pattern]))?.reason;
}
