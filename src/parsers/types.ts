export type TestVerdict = "pass" | "fail" | "skip";

export interface ParsedTest {
  test: string;
  subtest?: string;
  verdict: TestVerdict;
  /** The test's own output: for failures, the log excerpt reported with it. */
  log: string;
  /** Why a test was skipped, where the output says. */
  reason?: string;
}

export interface ParsedRun {
  tests: ParsedTest[];
  /** Counts the runner printed itself, for cross-checking what was parsed. */
  summary?: { passed: number; skipped: number; failed: number };
  /** Things in the output that contradict each other (a verdict must not rest on them silently). */
  problems: string[];
}

export function excerpt(lines: readonly string[], max = 60): string {
  const kept = lines.length > max ? ["[...]", ...lines.slice(-max)] : [...lines];
  return kept.join("\n").trimEnd();
}
