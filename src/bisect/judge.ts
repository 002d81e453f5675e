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
}

/** `git bisect run` exit codes: 0 good, 1 bad, 125 skip (this commit cannot be judged). */
export const EXIT: Record<StepVerdict, number> = { good: 0, bad: 1, skip: 125 };

/**
 * Judges a run: tests failing (or a kernel splat while they ran) make a commit bad; a commit that does not
 * build, boot or have the selected tests is skipped, with the reason, since it says nothing of the tests.
 */
export function judge(run: ArchRun): { verdict: StepVerdict; reason: string } {
  if (run.error) {
    if (run.error.stage === "run" && !/matches no test/.test(run.error.message))
      return { verdict: "bad", reason: `run: ${run.error.message.split("\n")[0]}` };
    return { verdict: "skip", reason: `${run.error.stage}: ${run.error.message.split("\n")[0]}` };
  }
  if (run.status === "passed") return { verdict: "good", reason: "selected tests passed" };
  if (run.status === "skipped")
    return { verdict: "skip", reason: "the suite denies every selected test here" };
  const failed = run.tests.filter((t) => t.verdict === "fail").map(testName);
  const why = [
    failed.length ? `failed: ${failed.join(", ")}` : "",
    ...run.splats.map((s) => `kernel ${s.kind}: ${s.title}`),
    ...run.problems,
  ].filter(Boolean);
  return { verdict: "bad", reason: why.join("; ") };
}
