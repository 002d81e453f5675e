import { randomUUID } from "node:crypto";
import { appendFileSync, mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import { type Arch, loadArch } from "../arch/arch.ts";
import { InfraError, KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { log } from "../common/log.ts";
import { bootGuest, buildFor, type GuestRequest, saveSnapshot } from "../guest/boot.ts";
import { harnessFaults, jitAsked, readGuestFacts } from "../guest/facts.ts";
import type { Guest } from "../guest/guest.ts";
import { unpackGuestPackages } from "../guest/image.ts";
import type { Accel } from "../guest/qemu.ts";
import { type History, judgeAndRecord } from "../history/history.ts";
import { onInterrupt } from "../host/children.ts";
import { decodeTrace } from "../kernel/decode.ts";
import type { KernelBuild } from "../kernel/kbuild.ts";
import { applySeries } from "../kernel/series.ts";
import { isPackagedKernel, type KernelTree, resolveTree } from "../kernel/tree.ts";
import { TRACE_START } from "../parse/splats.ts";
import type { ArchRun, Results } from "../report/results.ts";
import { passRates, summaryTable } from "../report/summary.ts";
import { archStatus, markInterrupted, nothingPassedProblem } from "../report/verdict.ts";
import { newResults, writeReports } from "../report/write.ts";
import { buildSelftests, declaredTests } from "../selftests/build.ts";
import { buildKselftest } from "../selftests/kselftest.ts";
import { type UnbuiltProgTest, unbuiltReason } from "../selftests/plan.ts";
import { treeConfigFragments, treeFlavours } from "../selftests/tree-lists.ts";
import { runCommands } from "./commands.ts";
import { GUEST_DIR } from "./context.ts";
import { type Deadlines, RunDeadline, resolveDeadlines } from "./deadlines.ts";
import { KernelWatch } from "./kernel-log.ts";
import { scanForLeaks, withLeakList } from "./kmemleak.ts";
import { allFiles, type Push, programsAmong, resolvePush } from "./push.ts";
import { splitCliTests } from "./selection.ts";
import { mergeShardRuns, planShards, type ShardRun, shardDirName, shardUnits } from "./shards.ts";
import {
  fragmentPath,
  KSELFTEST_DIR,
  loadSuite,
  type Suite,
  selectTests,
  suiteFragments,
  treeDenyFor,
  withFlavour,
} from "./suite.ts";

/** How the user asked every cell of a run to be built, booted and run (the CLI's options). */
export interface MachineSpec {
  jobs?: number;
  accel?: Accel;
  cpus: number;
  memoryMiB: number;
  /** Kernel command-line parameters after khil's own. */
  append: string[];
  /** The user's deadlines; the suite's `timeouts` and the defaults fill in the rest. */
  deadlines: Partial<Deadlines>;
  /** Failed tests are run again alone up to this many times (`flaky` when they then pass). */
  retries: number;
  /** The whole run's deadline, shared by its cells. */
  runDeadline?: RunDeadline;
  /** The results database each run is judged against and recorded in (`--history`); none without. */
  history?: History;
}

/** One arch of one suite on one tree: what `boot-and-test` runs per arch and a matrix runs per cell. */
export interface CellSpec {
  arch: Arch;
  tree: KernelTree;
  suite: Suite;
  fragments: string[];
  tests?: string[];
  /** false: run the tests the suite's deny list would skip. */
  deny: boolean;
  /** A test_progs flavour other than the plain one (no_alu32, cpuv4): the suite is run through withFlavour. */
  flavour?: string;
  machine: MachineSpec;
  runDir: string;
  /** A label for the cell in combined reports (matrix); the arch name otherwise. */
  cell?: string;
  /** Host files the user pushes along with the suite's (`--push`). */
  extra?: Push[];
  /**
   * A ready guest's snapshot (guest/snapshot.ts): `save` one after the push (a first run, whose boot is
   * under test), or `restore` one instead of booting and pushing (a repetition of a run already made).
   */
  snapshot?: "save" | "restore";
  /** Split the tests over this many guests at once (run/shards.ts), each in a directory of its own. */
  shards?: number;
  /** Set for one shard of a split cell (testShards): its directory, and what is judged of the whole is not judged here. */
  shard?: string;
}

/** One cell of a matrix as its axes name it: what `matrix` runs locally and `lava job` hands to a lab. */
export interface CellAxes {
  name: string;
  arch: string;
  /** A packaged version ("6.12") or a tree path. */
  kernel: string;
  suite: string;
  /** Kconfig fragments of the cell's variant: names in kernel-config/ or paths. */
  fragments: string[];
  /** Kernel command-line parameters of the variant, after the run's own. */
  append: string[];
  /** The `--series` of this cell, by its name on the series axis. */
  series?: { name: string; path: string };
  /** The cell's test_progs flavour, where it is not the plain test_progs. */
  flavour?: string;
  /** Guests the cell's tests are split over (a matrix's `shards:`). */
  shards?: number;
}

/** The spec of a matrix cell: its tree (with its series applied), arch, suite and variant. */
export async function cellSpec(cell: CellAxes, machine: MachineSpec, runDir: string): Promise<CellSpec> {
  const base = await resolveTree(
    isPackagedKernel(cell.kernel) ? { kernel: cell.kernel } : { tree: cell.kernel },
  );
  return {
    machine: { ...machine, append: [...machine.append, ...cell.append] },
    arch: loadArch(cell.arch),
    tree: cell.series ? await applySeries(base, cell.series.path, undefined) : base,
    suite: withFlavour(loadSuite(cell.suite), cell.flavour),
    fragments: cell.fragments.map(fragmentPath),
    deny: true,
    ...(cell.flavour ? { flavour: cell.flavour } : {}),
    ...(cell.shards ? { shards: cell.shards } : {}),
    runDir,
    cell: cell.name,
  };
}

export function deadlines(spec: CellSpec): Deadlines {
  return resolveDeadlines(spec.machine.deadlines, spec.suite.timeouts);
}

export interface Prepared {
  build: KernelBuild;
  pushes: Push[];
}

/** What the user (or the matrix cell) changed on top of the suite: fragments by name, kernel parameters. */
function variant(spec: CellSpec): string {
  return [
    ...spec.fragments.map((f) => basename(f, ".config")),
    ...spec.machine.append,
    ...(spec.flavour ? [spec.flavour] : []),
  ].join("+");
}

export function newRun(spec: CellSpec): ArchRun {
  const run: ArchRun = {
    id: randomUUID(),
    startedAt: new Date().toISOString(),
    arch: spec.arch.name,
    suite: spec.suite.name,
    tree: spec.tree.label,
    ...(spec.tree.name ? { treeName: spec.tree.name } : {}),
    ...(spec.tree.commit ? { commit: spec.tree.commit } : {}),
    ...(variant(spec) ? { variant: variant(spec) } : {}),
    ...(spec.tree.series ? { series: spec.tree.series } : {}),
    status: "error",
    problems: [],
    harness: [],
    splats: [],
    tests: [],
    timings: {},
  };
  if (spec.cell) run.cell = spec.cell;
  return run;
}

function request(spec: CellSpec): GuestRequest {
  const m = spec.machine;
  const d = deadlines(spec);
  return {
    arch: spec.arch,
    tree: spec.tree,
    fragments: [...suiteFragments(spec.suite), ...spec.fragments],
    advisory: spec.suite.fromTree?.config ? treeConfigFragments(spec.tree.path, spec.arch) : [],
    jobs: m.jobs,
    runDir: spec.runDir,
    accel: m.accel,
    buildTimeoutMs: d.build * 1000,
    bootTimeoutMs: d.boot * 1000,
    cpus: m.cpus,
    memoryMiB: m.memoryMiB,
    append: m.append,
    tcgSingleThread: spec.suite.tcgSingleThread,
    ...(spec.suite.image ? { image: spec.suite.image } : {}),
  };
}

/**
 * Runs one stage, turning its failure into the run's verdict: the stage is named, the stack of an
 * unexpected exception goes to a log, not the terminal. Usage errors (exit 2) still stop everything. Once
 * the whole run's deadline has passed, a stage fails with that timeout, whatever else it saw.
 */
export async function stage<T>(
  spec: CellSpec,
  run: ArchRun,
  name: string,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  const t0 = Date.now();
  const deadline = spec.machine.runDeadline;
  try {
    if (deadline?.expired) throw new InfraError(deadline.message, name);
    const r = await fn();
    if (deadline?.expired) throw new InfraError(deadline.message, name);
    return r;
  } catch (e) {
    if (e instanceof KhilError && e.exitCode === 2 && !(e instanceof InfraError)) throw e;
    if (!(e instanceof KhilError))
      appendFileSync(
        join(spec.runDir, "khil-errors.log"),
        `${spec.arch.name} ${name}: ${(e as Error).stack}\n`,
      );
    const s = e instanceof InfraError ? e.stage : name;
    const message = deadline?.expired ? `${deadline.message} (stopped during ${s})` : (e as Error).message;
    if (deadline?.expired) run.interrupted ??= message;
    // An exception khil did not expect (ENOSPC or EIO on a log, a bug of khil's) is no verdict on the kernel.
    const fault =
      deadline?.expired || !(e instanceof KhilError)
        ? "harness"
        : e instanceof InfraError
          ? e.fault
          : undefined;
    run.error = { stage: s, message, ...(fault ? { fault } : {}) };
    run.status = "error";
    log(`${run.cell ?? run.arch}: ${s}: ${run.error.message}`);
    return undefined;
  } finally {
    run.timings[name] = (Date.now() - t0) / 1000;
  }
}

/** What a result recorded before any guest (none: accel "-") says of its cell. */
function hostRecord(spec: CellSpec) {
  return { arch: spec.arch.name, kernel: spec.tree.label, accel: "-", suite: spec.suite.name };
}

/**
 * A flavour this tree's selftests do not build (cpuv4 before 6.6) skips the run with the reason, before any
 * build: a matrix over flavours and kernels is not failed by the kernels that cannot have one.
 */
function flavourMissing(spec: CellSpec, run: ArchRun): boolean {
  const have = treeFlavours(spec.tree.path);
  if (!spec.flavour || have.includes(spec.flavour)) return false;
  run.tests.push({
    ...hostRecord(spec),
    command: "test_progs",
    test: `test_progs-${spec.flavour}`,
    verdict: "skip",
    reason: `denied: this tree's selftests Makefile defines no test_progs-${spec.flavour} (its flavours: ${have.join(", ")})`,
  });
  run.status = archStatus(run);
  return true;
}

/**
 * The selected tests of prog_tests the tree cannot build (selftests/plan.ts) are skipped with the reason,
 * once for the cell (not per shard or per guest): test_progs never has them, so no run could list them.
 */
function recordUnbuilt(spec: CellSpec, run: ArchRun, unbuilt: readonly UnbuiltProgTest[]): void {
  const suiteTests = spec.suite.arch?.[spec.arch.name]?.tests ?? spec.suite.tests;
  const recorded = new Set<string>();
  for (const cmd of spec.suite.commands.filter((c) => c.parser === "test_progs")) {
    const testParts = (spec.tests ?? cmd.tests ?? suiteTests).map((p) => p.split("/")[0] ?? p);
    for (const u of unbuilt)
      for (const test of u.tests.filter((t) => matchesAny(t, testParts) && !recorded.has(t))) {
        recorded.add(test);
        run.tests.push({
          ...hostRecord(spec),
          command: cmd.name,
          test,
          verdict: "skip",
          reason: unbuiltReason(u),
        });
      }
  }
}

/** The stages that only use the host: kernel and selftests builds. */
export async function prepareCell(spec: CellSpec, run: ArchRun): Promise<Prepared | undefined> {
  mkdirSync(spec.runDir, { recursive: true });
  if (flavourMissing(spec, run)) return undefined;
  const t0 = Date.now();
  // A failure here is not the run's: buildImage unpacks the same packages again and reports it at boot.
  const packages = unpackGuestPackages(spec.arch, spec.suite.image).then(
    (unpacked) => {
      if (unpacked) run.timings.packages = (Date.now() - t0) / 1000;
    },
    () => undefined,
  );
  const build = await stage(spec, run, "build", () => buildFor(request(spec)));
  await packages;
  if (!build) return undefined;
  if (build.configUnmet.length) run.configUnmet = build.configUnmet;
  const suite = spec.suite;
  const b = suite.build;
  const pushes: Push[] = [];
  const timeoutMs = deadlines(spec).build * 1000;
  if (b?.progTests || b?.probes) {
    const what = {
      progTests: b.progTests,
      programs: b.programs,
      probes: b.probes ?? [],
      flavour: spec.flavour,
    };
    const st = await stage(spec, run, "selftests", () =>
      buildSelftests(spec.arch, build, what, spec.runDir, timeoutMs),
    );
    if (!st) return undefined;
    recordUnbuilt(spec, run, st.unbuilt);
    const files = await stage(spec, run, "push", async () => resolvePush(st.dir, suite.push));
    if (!files) return undefined;
    pushes.push({ dir: st.dir, files, dest: GUEST_DIR });
    // A flavour's test_progs changes into <flavour>/ for its BPF objects and modules: the same globs there.
    if (spec.flavour && b.progTests) {
      const dir = join(st.dir, spec.flavour);
      const own = await stage(spec, run, "push", async () =>
        resolvePush(
          dir,
          suite.push.filter((g) => g.includes("*")),
        ),
      );
      if (!own) return undefined;
      pushes.push({ dir, files: own, dest: `${GUEST_DIR}/${spec.flavour}` });
    }
  }
  if (b?.kselftest) {
    const targets = b.kselftest;
    const ks = await stage(spec, run, "selftests", () =>
      buildKselftest(spec.arch, build, targets, spec.runDir, timeoutMs),
    );
    if (!ks) return undefined;
    pushes.push({ dir: ks.dir, files: allFiles(ks.dir), dest: `${GUEST_DIR}/${KSELFTEST_DIR}` });
  }
  pushes.push(...(spec.extra ?? []));
  return { build, pushes };
}

/**
 * QEMU ended by a signal that only the host sends (the OOM killer's SIGKILL, a user's TERM or HUP), not by
 * khil, or by the SIGBUS a full tmpfs gives a guest whose RAM is a file there: the guest's end says nothing
 * about its kernel. QEMU dying of its own fault (SIGABRT, SIGSEGV, which
 * a guest can provoke) is not this: it is a problem, like any other death of the guest.
 */
function killedFromOutside(g: Guest): string | undefined {
  if (g.killedBy === "SIGBUS" && g.ramInFile)
    return "QEMU died of SIGBUS with the guest's RAM in a file: the tmpfs holding it filled up (another run's guests?), or a snapshot's file was cut short";
  return g.killedBy && ["SIGKILL", "SIGTERM", "SIGHUP", "SIGINT"].includes(g.killedBy)
    ? `QEMU was killed by ${g.killedBy}, not by khil (the host's OOM killer, or another user)`
    : undefined;
}

/** How long the guest is left after its last command before the last reading of its kernel log. */
const END_SETTLE_MS = 500;

/**
 * Whether the guest still answers after its last command (true), recording why not: no verdict rests on a kernel that died quietly.
 * A guest that exited by itself or stopped answering is the kernel's death; QEMU dying of its own signal (a
 * SIGSEGV a guest can provoke) is a problem; a QEMU killed from outside (the host's OOM killer) interrupted
 * the run instead: that is no kernel's fault.
 */
async function checkLiveness(
  g: Guest,
  run: ArchRun,
  watch: KernelWatch,
  interruption: () => string | undefined,
): Promise<boolean> {
  const cut = interruption();
  if (cut) {
    run.interrupted ??= cut;
    return false;
  }
  if (!g.running) {
    if (g.killedBy) run.problems.push(`the guest's QEMU died of ${g.killedBy} during the run`);
    else watch.unnamed("guest death", "the guest's QEMU exited during the run");
    return false;
  }
  const r = await g.ssh.capture("true", 10_000).catch((e: Error) => ({ code: null, out: e.message }));
  if (r.code === 0) return true;
  // A lost connection may be QEMU's end, not yet seen: then that end says whose fault it is.
  await g.settle();
  if (!g.running) return checkLiveness(g, run, watch, interruption);
  watch.unnamed(
    "guest death",
    `the guest did not answer over SSH after the last command (${r.out || "no exit code"})`,
  );
  return false;
}

/** What tests a built cell: a guest on this machine (testCell), or a lab's (lava/engine.ts). */
export type CellTester = (spec: CellSpec, run: ArchRun, p: Prepared) => Promise<void>;

/** The stages in the guest: image, boot, facts, push, the suite's commands; the guest is always stopped. */
export async function testCell(spec: CellSpec, run: ArchRun, p: Prepared): Promise<void> {
  let guest: Guest | undefined;
  const { pushes, build } = p;
  const watch = new KernelWatch(run);
  let leaks: string | undefined;
  try {
    const elfs = pushes.flatMap((x) => programsAmong(x.dir, x.files));
    const snap = spec.snapshot && { restore: spec.snapshot === "restore", pushes };
    const booted = await stage(spec, run, "boot", () =>
      bootGuest(request(spec), build, elfs, watch.feed, snap),
    );
    if (!booted) return;
    guest = booted.guest;
    const g = guest;
    const restored = Boolean(booted.readiness.restored);
    run.timings[restored ? "restoreToSsh" : "bootToSsh"] = g.bootSeconds;
    watch.stage("facts");
    const facts = await stage(spec, run, "facts", () => readGuestFacts(g, build, booted.accel));
    if (!facts) return;
    run.guest = { ...facts.facts, ...booted.readiness };
    await watch.readBookkeeping(g);
    run.harness?.push(
      ...facts.problems,
      ...harnessFaults(facts.facts, spec.suite.minCpus, jitAsked(spec.machine.append)),
    );
    const files = pushes.reduce((n, x) => n + x.files.length, 0);
    // A restored guest has the files already: they are part of what its snapshot is of.
    if (files && !restored) {
      watch.stage("push");
      const pushed = await stage(spec, run, "push", async () => {
        for (const x of pushes)
          await g.ssh.push(x.dir, x.files, x.dest, deadlines(spec).push * 1000).catch((e: Error) => {
            throw new InfraError(e.message, "push");
          });
        return true;
      });
      if (!pushed) return;
      log(`${spec.arch.name}: pushed ${files} files in ${run.timings.push?.toFixed(1)} s`);
    }
    // Saved only from a guest nothing has gone wrong in yet: a repetition must not start from a damaged one.
    let saved = false;
    if (spec.snapshot === "save" && booted.identity && !run.splats.length && !run.harness?.length) {
      const t0 = Date.now();
      saved = (await saveSnapshot(g, booted.identity)) !== undefined;
      run.timings.snapshot = (Date.now() - t0) / 1000;
    }
    // A test run again (a retry, an inconclusive skip) runs in a fresh copy of the guest as it was before
    // any test, where there is one: what its first attempt did to this guest cannot fail it again.
    const freshGuest = saved || restored ? booted.restoreAgain : undefined;
    const cli = spec.tests ? splitCliTests(spec.suite.commands, spec.tests) : undefined;
    const selected = cli ? { ...spec.suite, tests: cli.suite, arch: undefined } : spec.suite;
    const suite = spec.deny ? selected : { ...selected, deny: [] };
    const selection = selectTests(
      suite,
      spec.arch.name,
      build.release,
      facts.facts.bpfJitEnable === "0" ? "off" : "on",
      spec.deny ? treeDenyFor(spec.suite, spec.tree.path, spec.arch) : [],
    );
    const interruption = () =>
      spec.machine.runDeadline?.expired ? spec.machine.runDeadline.message : killedFromOutside(g);
    const c = {
      ...{ arch: spec.arch, suite, selection, guest: g, build, accel: booted.accel, watch, cli, freshGuest },
      interruption,
    };
    await stage(spec, run, "run", async () => {
      await runCommands({ ...c, runDir: spec.runDir, retries: spec.machine.retries }, run);
      if (!watch.stuck && (await checkLiveness(g, run, watch, interruption)) && !run.interrupted) {
        leaks = await scanForLeaks(g, watch, run, spec.runDir);
        // A report of the run's last moments (a deferred free, an RCU callback) comes after its last line.
        watch.stage("end of run");
        await new Promise((r) => setTimeout(r, END_SETTLE_MS));
        await watch.readDmesg(g, spec.runDir);
        await watch.readBookkeeping(g);
      }
    });
    // A shard's tests are a part: whether any passed is asked of the merged run (testShards).
    const none = !spec.shard && nothingPassedProblem(run.tests, (t) => matchesAny(t, spec.suite.allowSkip));
    if (none) run.problems.push(none);
  } finally {
    watch.finish();
    if (leaks) withLeakList(run, leaks);
    // A QEMU killed from outside interrupted the run whatever stage noticed it first, however it failed
    // (an SSH call that times out rather than a command that ends): no verdict of the kernel's rests on it.
    await guest?.settle();
    const cut = guest && killedFromOutside(guest);
    if (cut) run.interrupted ??= cut;
    if (guest) await guest.stop();
    await decodeSplats(spec.arch, p, run);
    run.status = archStatus(run);
  }
}

const DECODE_BUDGET_MS = 90_000;

/**
 * A cell's tests dealt over `spec.shards` guests that boot and run at once (run/shards.ts), from the one
 * build: each shard is a run of its own in its own directory (its console kept there, whatever its
 * verdict), and the cell's run is their merge, every test of every shard in it.
 */
export async function testShards(spec: CellSpec, run: ArchRun, p: Prepared, test: CellTester): Promise<void> {
  const progTests = spec.suite.build?.progTests;
  const declared = progTests ? declaredTests(p.build.tree, progTests) : [];
  const plan = planShards(shardUnits(spec.suite, spec.arch.name, declared, spec.tests), spec.shards ?? 1);
  log(
    `${run.cell ?? run.arch}: ${plan.flat().length} tests over ${plan.length} guests (${plan.map((s) => s.length).join(" + ")})`,
  );
  const vcpus = plan.length * spec.machine.cpus;
  if (vcpus > availableParallelism())
    log(
      `${run.cell ?? run.arch}: ${plan.length} guests of ${spec.machine.cpus} CPUs on a host with ${availableParallelism()}: they share its cores, and a test with a time limit may miss it (fewer --shards or --cpus)`,
    );
  // Every shard runs to its end (its guest stopped) whatever another's fate, before anything is thrown.
  const settled = await Promise.allSettled(
    plan.map(async (tests, i): Promise<ShardRun> => {
      const dir = shardDirName(i, plan.length);
      const shard = {
        ...spec,
        tests,
        runDir: join(spec.runDir, dir),
        cell: `${run.cell ?? run.arch} ${dir}`,
        shard: dir,
      };
      const r = newRun(shard);
      const t0 = Date.now();
      await stage(shard, r, "shard", async () => {
        mkdirSync(shard.runDir, { recursive: true });
        await test(shard, r, p);
      });
      r.status = archStatus(r);
      return { run: r, dir, seconds: (Date.now() - t0) / 1000 };
    }),
  );
  const thrown = settled.find((x) => x.status === "rejected");
  if (thrown) throw thrown.reason;
  const shards = settled.flatMap((x) => (x.status === "fulfilled" ? [x.value] : []));
  Object.assign(run, mergeShardRuns(run, shards));
  const none = nothingPassedProblem(run.tests, (t) => matchesAny(t, spec.suite.allowSkip));
  if (none) run.problems.push(none);
  run.status = archStatus(run);
}

/** A built cell tested by `test`, in one guest or, with `spec.shards`, split over several. */
export function testPrepared(spec: CellSpec, run: ArchRun, p: Prepared, test: CellTester): Promise<void> {
  return (spec.shards ?? 1) > 1 ? testShards(spec, run, p, test) : test(spec, run, p);
}

/**
 * Each splat's trace decoded against this kernel (kernel/decode.ts), once the guest is gone: a failure to
 * decode is noted on the splat and changes no verdict.
 */
export async function decodeSplats(arch: Arch, p: Prepared, run: ArchRun): Promise<void> {
  // The modules the guest was given (bpf_testmod): frames in them are decoded too.
  const modules = p.pushes.flatMap((x) =>
    x.files.filter((f) => f.endsWith(".ko")).map((f) => join(x.dir, f)),
  );
  // A run that splats many times (a flood of warnings) is not held up by decoding them all.
  const until = Date.now() + DECODE_BUDGET_MS;
  for (const s of run.splats.filter((x) => x.excerpt.split("\n").some((l) => TRACE_START.test(l.trim())))) {
    if (Date.now() > until) {
      s.decodeError = `the run's ${DECODE_BUDGET_MS / 1000} s for decoding was spent on the splats before it`;
      continue;
    }
    const d = await decodeTrace(arch, p.build, s.excerpt, modules).catch((e: Error) => ({
      error: e.message,
    }));
    if ("decoded" in d) s.decoded = d.decoded;
    else s.decodeError = d.error;
  }
}

/**
 * A finished run judged against its cell's history and recorded (history/history.ts). The database failing
 * (a full disk, another khil holding it past the busy wait) costs the history, never the run's results.
 */
export function remember(history: History | undefined, run: ArchRun, runDir: string): void {
  try {
    judgeAndRecord(history, run, runDir);
  } catch (e) {
    log(`history: not recorded in ${history?.db.file}: ${(e as Error).message}`);
  }
}

/** The whole run's deadline: the user's, else the largest any of the run's suites asks for; `times` runs of it. */
export function runDeadline(machine: MachineSpec, suites: readonly Suite[], times = 1): RunDeadline {
  const total = Math.max(...suites.map((s) => resolveDeadlines(machine.deadlines, s.timeouts).total));
  return new RunDeadline(total * times);
}

/** build → selftests → image → boot → push → run → parse → report, for each arch in turn. */
export async function bootAndTest(
  specs: CellSpec[],
  runDir: string,
  test: CellTester = testCell,
): Promise<Results> {
  const results = newResults(runDir);
  let current: ArchRun | undefined;
  const kept = onInterrupt((signal) => {
    if (current) markInterrupted(current, signal);
    writeReports(results);
    process.stdout.write(`${summaryTable(results)}\nresults: ${runDir} (written after ${signal})\n`);
  });
  for (const spec of specs) {
    const run = newRun(spec);
    results.runs.push(run);
    current = run;
    const t0 = Date.now();
    try {
      const prepared = await prepareCell(spec, run);
      if (prepared) await testPrepared(spec, run, prepared, test);
    } finally {
      run.timings.total = (Date.now() - t0) / 1000;
      remember(spec.machine.history, run, spec.runDir);
      // Written after every arch, so what was gathered survives a later failure or Ctrl-C.
      writeReports(results);
      current = undefined;
    }
  }
  kept();
  process.stdout.write(`${summaryTable(results)}\n`);
  const rates = passRates(results);
  if (rates) process.stdout.write(`${rates}\n`);
  process.stdout.write(`results: ${runDir} (results.json, junit.xml, report.html, console.log, logs)\n`);
  return results;
}
