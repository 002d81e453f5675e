/** From what a run recorded to its verdict, and from the verdicts to the exit code. */
import type { ArchRun, Results } from "./results.ts";

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
