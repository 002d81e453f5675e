/**
 * "flaky" is never a parser's: khil sets it when a failed test passes on a retry. "notrun": selected, but
 * what should have run it died first.
 */
export type TestVerdict = "pass" | "fail" | "skip" | "flaky" | "notrun";

export interface ParsedTest {
  test: string;
  subtest?: string;
  verdict: TestVerdict;
  /** The test's own output: for failures, the log excerpt reported with it. */
  log: string;
  /** Why a test was skipped, where the output says. */
  reason?: string;
  /** What its first attempt said when a rerun's words replaced the reason (`--retries`): how it failed. */
  firstReason?: string;
}

export interface ParsedRun {
  tests: ParsedTest[];
  /** Counts the runner printed itself, for cross-checking what was parsed. */
  summary?: { passed: number; skipped: number; failed: number };
  /** Things in the output that contradict each other (a verdict must not rest on them silently). */
  problems: string[];
  /** The test a crash handler named as it died (test_progs prints the running test's result, then `Caught signal`). */
  crashed?: string;
}

/**
 * A log excerpt of at most `max` lines. The lines that say what failed (test_progs' `name:FAIL:check`) lead
 * it, so that a long log of passing checks after them does not push them out.
 */
export function excerpt(lines: readonly string[], max = 60): string {
  if (lines.length <= max) return lines.join("\n").trimEnd();
  const failing = lines.filter((l) => /:FAIL:/.test(l)).slice(0, 20);
  const tail = lines.slice(-(max - failing.length));
  const lead = failing.filter((l) => !tail.includes(l));
  return [...lead, "[...]", ...tail].join("\n").trimEnd();
}
