/** From what a run recorded to its verdict, and from the verdicts to the exit code. */
import { type ArchRun, failing, type Results, type TestRecord, testName } from "./results.ts";

/** The exit code's question: did every selected test pass, those the suite denies with a reason aside? */
export function allPassed(r: Results): boolean {
  return r.runs.every((run) => run.status === "passed" || run.status === "skipped");
}

/** Skipped by khil, not by the test: a deny list took it, or the tree cannot build it (selftests/plan.ts). */
const isDenied = (t: TestRecord) => t.verdict === "skip" && /^(denied|not built):/.test(t.reason ?? "");

/**
 * A kernel splat decides first, over anything that followed from it (a lost connection, a harness fault);
 * then an error of khil's own stages; then any problem, fault or test that did not pass. "skipped" only
 * when the suite's deny list, with its reasons, took every selected test.
 */
export function archStatus(
  run: Pick<ArchRun, "tests" | "problems" | "harness" | "error" | "splats" | "interrupted">,
): ArchRun["status"] {
  if (run.splats.length > 0) return "failed";
  if (run.error || run.interrupted) return "error";
  // A problem is a finding even where no test gave a result (a KTAP program that crashed before its plan).
  if (run.problems.length > 0 || (run.harness ?? []).length > 0) return "failed";
  const top = run.tests.filter((t) => !t.subtest);
  if (top.length === 0) return "error";
  if (run.tests.some(failing)) return "failed";
  return top.every(isDenied) ? "skipped" : "passed";
}

/**
 * A run still going when a signal ended khil: kept with what it had, an error of the harness's (no verdict
 * of the kernel's rests on a run cut short), as an interruption from outside is.
 */
export function markInterrupted(run: ArchRun, signal: string): void {
  run.interrupted ??= `${signal}: khil was stopped while this ran; the results are those gathered until then`;
  run.status = archStatus(run);
}

/**
 * A run in which no selected test passed is not green: a test that skipped itself everywhere tested
 * nothing. Only the suite can say a test may do that (`allowSkip`); the deny list's skips are apart.
 */
export function nothingPassedProblem(
  tests: readonly TestRecord[],
  allowSkip: (test: string) => boolean,
): string | undefined {
  const top = tests.filter((t) => !t.subtest);
  if (top.some((t) => t.verdict === "pass" || t.verdict === "flaky")) return undefined;
  const selfSkipped = top.filter((t) => t.verdict === "skip" && !isDenied(t) && !allowSkip(t.test));
  if (selfSkipped.length === 0) return undefined;
  return `no selected test passed: ${selfSkipped.map((t) => `${testName(t)} skipped itself${t.reason ? ` (${t.reason})` : ""}`).join(", ")}`;
}
