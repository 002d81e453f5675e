import { type ArchRun, testName } from "../report/results.ts";

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
/** Where a splat means the kernel does not even come up fit to test: bad under `--type boot` too. */
const BOOT_STAGES = ["boot", "facts", "push"];
const firstLine = (m: string) => m.split("\n")[0] ?? m;
const skip = (reason: string): Judgement => ({ verdict: "skip", reason });
const bad = (reason: string): Judgement => ({ verdict: "bad", reason });

/**
 * Judges one step. A commit is bad only for what the kernel did: a build that fails (type build), a splat
 * during boot or the stages right after it (type boot and test), failing tests, a splat or a contradiction in
 * the output (type test). What says nothing about the commit — a stage of khil's own failing without a
 * kernel splat, khil's deadline or QEMU killed from outside (and whatever failed after it), a harness fault
 * (low-resolution hrtimers, JIT off, too few CPUs, another kernel booted) — is a skip, with its reason.
 */
export function judge(run: ArchRun, type: BisectType = "test"): Judgement {
  const err = run.error;
  if (err?.stage === "build" || err?.stage === "config")
    return type === "build" && err.stage === "build"
      ? bad(`build: ${firstLine(err.message)}`)
      : skip(`${err.stage}: ${firstLine(err.message)}`);
  if (type === "build") return { verdict: "good", reason: "the kernel builds" };
  // Before any test: the kernel's own boot and the stages right after SSH came up.
  const atBoot = run.splats.find((s) => BOOT_STAGES.includes(s.during));
  if (atBoot) return bad(`kernel ${atBoot.kind} during ${atBoot.during}: ${atBoot.title}`);
  // What khil's deadline or the host did to the run says nothing of the commit, nor what followed from it
  // (the problems, and the tests of the command it cut); a splat, or a test that failed before it, still does.
  const failedBefore = run.tests.filter((t) => t.verdict === "fail" && !t.afterInterruption);
  if (run.interrupted && (type === "boot" || (run.splats.length === 0 && failedBefore.length === 0)))
    return skip(`interrupted: ${run.interrupted}`);
  if (err && ["selftests", "boot", "facts", "push"].includes(err.stage))
    return skip(`${err.stage}: ${firstLine(err.message)}`);
  if (type === "boot")
    return run.guest
      ? { verdict: "good", reason: "the kernel boots to SSH" }
      : skip("the guest was not reached");
  const failed = (run.interrupted ? failedBefore : run.tests.filter((t) => t.verdict === "fail")).map(
    testName,
  );
  const kernel = [
    failed.length ? `failed: ${failed.join(", ")}` : "",
    ...run.splats.map((s) => `kernel ${s.kind}: ${s.title}`),
    ...(run.interrupted ? [] : run.problems),
  ].filter(Boolean);
  if (kernel.length) return bad(kernel.join("; "));
  if (err) return skip(`${err.stage}: ${firstLine(err.message)}`);
  const harness = run.harness ?? [];
  if (harness.length) return skip(`harness fault: ${harness.join("; ")}`);
  if (run.status === "passed") return { verdict: "good", reason: "selected tests passed" };
  if (run.status === "skipped") return skip("the suite denies every selected test here");
  return skip(`no verdict from the tests (status ${run.status})`);
}
