/** One schema for every parser and every arch: what results.json holds. */

/** flaky: failed, then passed when run again (`--retries`); it does not fail the run but is reported. */
export type Verdict = "pass" | "fail" | "skip" | "flaky" | "error";

export interface GuestFacts {
  kernelRelease: string;
  configHash: string;
  arch: string;
  machine: string;
  accel: string;
  accelReason: string;
  bpfJitEnable: string;
  clocksource: string;
  hrtimerResolutionNs: number | null;
  cpus: number;
  bootSeconds: number;
}

export interface TestRecord {
  arch: string;
  kernel: string;
  accel: string;
  suite: string;
  command: string;
  test: string;
  subtest?: string;
  verdict: Verdict;
  durationMs?: number;
  reason?: string;
  log?: string;
}

export interface SplatRecord {
  kind: string;
  title: string;
  location?: string;
  excerpt: string;
  /** The test running when it appeared (the next result line after it), or the stage. */
  during: string;
  source: "console" | "dmesg";
}

export interface ArchRun {
  arch: string;
  /** The matrix cell this run belongs to. */
  cell?: string;
  suite: string;
  /**
   * "passed" only when every selected test passed (or some were skipped by the suite's deny list, with the
   * reason); "skipped" when the deny list skipped all of them.
   */
  status: "passed" | "failed" | "error" | "skipped";
  /** For an error: the stage that failed and why (build, boot, push, a command's timeout...). */
  error?: { stage: string; message: string };
  guest?: GuestFacts;
  problems: string[];
  splats: SplatRecord[];
  tests: TestRecord[];
  timings: Record<string, number>;
}

export interface Results {
  khil: string;
  /** The khil process's peak resident memory when the report was written. */
  khilPeakRssMiB?: number;
  startedAt: string;
  finishedAt: string;
  runDir: string;
  runs: ArchRun[];
}

/** The exit code's question: did every selected test pass, those the suite denies with a reason aside? */
export function allPassed(r: Results): boolean {
  return r.runs.every((run) => run.status === "passed" || run.status === "skipped");
}

export function archStatus(
  run: Pick<ArchRun, "tests" | "problems" | "error" | "splats">,
  jitOn: boolean,
): ArchRun["status"] {
  if (run.error) return "error";
  if (run.splats.length > 0) return "failed";
  const top = run.tests.filter((t) => !t.subtest);
  if (top.length === 0) return "error";
  if (!jitOn) return "failed";
  if (run.problems.length > 0) return "failed";
  if (run.tests.some((t) => t.verdict === "fail" || t.verdict === "error")) return "failed";
  return top.every((t) => t.verdict === "skip" && t.reason?.startsWith("denied:")) ? "skipped" : "passed";
}
