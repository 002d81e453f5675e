import { type Fault, faults } from "../report/fault.ts";
import type { ArchRun } from "../report/results.ts";

export type StepVerdict = "good" | "bad" | "skip";

export interface StepRecord {
  commit: string;
  subject: string;
  verdict: StepVerdict;
  reason: string;
  seconds: number;
  runDir: string;
  /** Failing tests with their log excerpts (bad), or the passing tests (good). */
  tests: { name: string; verdict: string; log?: string }[];
  /** Seconds of each stage of the step (build, selftests, boot, push, each command), and make's own. */
  timings: Record<string, number>;
  /** The raw work the step stands for, and the whole step against it (khil's overhead: ratio - 1). */
  raw: RawWork;
  /**
   * What the step's verdict rests on: the kernel image and, for `test`, every file pushed to the guest. A
   * later step with the same key takes this one's verdict without booting.
   */
  key?: string;
  /** The earlier step whose verdict this one took: the same kernel and test files. */
  reused?: { commit: string; runDir: string };
}

export interface RawWork {
  make: number;
  boot: number;
  tests: number;
  ratio: number;
}

/** make, boot to SSH and the suite's commands, as timed inside the step, and the step against their sum. */
export function rawWork(timings: Record<string, number>, seconds: number): RawWork {
  const make = timings.make ?? 0;
  const boot = timings.bootToSsh ?? 0;
  const tests = Object.entries(timings)
    .filter(([k]) => k.startsWith("command:"))
    .reduce((n, [, v]) => n + v, 0);
  const sum = make + boot + tests;
  return { make, boot, tests, ratio: sum > 0 ? Number((seconds / sum).toFixed(2)) : 0 };
}

/** `git bisect run` exit codes: 0 good, 1 bad, 125 skip (this commit cannot be judged). */
export const EXIT: Record<StepVerdict, number> = { good: 0, bad: 1, skip: 125 };

/** What a step judges, as ktest.pl's TYPE: that the commit builds, that it boots, or that its tests pass. */
export const BISECT_TYPES = ["build", "boot", "test"] as const;
export type BisectType = (typeof BISECT_TYPES)[number];

type Judgement = { verdict: StepVerdict; reason: string };
const skip = (reason: string): Judgement => ({ verdict: "skip", reason });
const bad = (reason: string): Judgement => ({ verdict: "bad", reason });

/**
 * Which kernel and test faults (report/fault.ts) make a commit bad, as ktest.pl's TYPE: `build` only that it
 * does not compile; `boot` a kernel fault once built (a splat, a report its bookkeeping told, a guest that died);
 * `test` any kernel or test fault once built. A tree that does not compile cannot be booted or tested: skip.
 */
function counts(f: Fault, type: BisectType): boolean {
  if (f.class === "harness" || f.followsInterruption) return false;
  if (type === "build") return isBuild(f);
  if (isBuild(f)) return false;
  return type === "test" || f.class === "kernel";
}

/** The build stage's own failure (an error's `what` is its stage; a test's is `test ...`). */
const isBuild = (f: Fault) => f.what === "build";

/**
 * What leaves a step unjudged: under `build` only the build's and the config's failures; under `boot` all but
 * what only unfits a booted guest for tests (too few CPUs, low-resolution hrtimers, JIT off, no test result):
 * that it booted is still known, unless the guest runs another kernel than the one built.
 */
function leavesUnjudged(f: Fault, type: BisectType, run: ArchRun): boolean {
  if (type === "build") return isBuild(f) || f.what === "config";
  if (type === "boot" && (f.what === "harness fault" || f.what === "results"))
    return Boolean(run.guest?.configHash.startsWith("guest:"));
  return true;
}

/**
 * Judges one step from the run's faults, as fault.ts classes them: bad for what the kernel or its tests did
 * (as `type` counts them), skip for anything else found, since it says nothing about the commit (khil's
 * deadline or QEMU killed from outside, and whatever failed after it; a stage of khil's own; a harness fault
 * such as low-resolution hrtimers), good only for a run that found nothing.
 */
export function judge(run: ArchRun, type: BisectType = "test"): Judgement {
  const all = faults(run);
  const against = all.filter((f) => counts(f, type));
  if (against.length) {
    // Failing tests named together, as one reason, then each finding.
    const failed = against.filter((f) => f.what === "test fail").map((f) => f.where);
    const rest = against.filter((f) => f.what !== "test fail").map((f) => f.brief);
    return bad([...(failed.length ? [`failed: ${failed.join(", ")}`] : []), ...rest].join("; "));
  }
  const unjudged = all.filter((f) => leavesUnjudged(f, type, run));
  // What ended the run first explains the rest: the interruption, then the stage that failed.
  const first =
    unjudged.find((f) => f.what === "interrupted") ??
    unjudged.find((f) => f.what === run.error?.stage) ??
    unjudged.find((f) => f.class === "harness") ??
    unjudged[0];
  if (first?.what === "harness fault")
    return skip(
      `harness fault: ${unjudged.flatMap((f) => (f.what === "harness fault" ? [f.brief] : [])).join("; ")}`,
    );
  if (first) return skip(first.brief);
  if (type === "build") return { verdict: "good", reason: "the kernel builds" };
  if (type === "boot")
    return run.guest
      ? { verdict: "good", reason: "the kernel boots to SSH" }
      : skip("the guest was not reached");
  if (run.status === "passed") return { verdict: "good", reason: "selected tests passed" };
  if (run.status === "skipped") return skip("the suite denies every selected test here");
  return skip(`no verdict from the tests (status ${run.status})`);
}
