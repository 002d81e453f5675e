/**
 * What a cell's history says of a run, decided from the same test's (and the same measure's) past results in
 * the same cell. Pure: the database is read before and written after.
 *
 * - A **known flake**: the test failed now and then here (a `flaky` verdict, or a failure that the next run of
 *   the same commit did not repeat: across commits, a failure then a pass is a bug and its fix). In the spirit of NIPA's stability rule, a flake is **quarantined** until it has passed
 *   QUARANTINE_PASSES times in a row again: while quarantined, a failure the way it failed before (the same
 *   verdict and reason, numbers aside) is reported but does not fail the run. A different reason always
 *   counts, and a kernel splat fails the run whatever the history (verdict.ts never asks the history).
 * - A **regression**: it had passed at least REGRESSION_PASSES times in a row here and fails now; the report
 *   names the run and commit of its first failure.
 * - A **measure that moved**: its median lies outside the cell's own past medians and more than
 *   SHIFT_SPREADS robust spreads from their median: a warning, never a failure.
 */
import { median } from "../common/median.ts";
import { formatValue } from "../parse/measures.ts";
import { stableTitle } from "../report/fingerprint.ts";
import type { TestHistory, TestRecord, Verdict } from "../report/results.ts";
import type { PastResult } from "./db.ts";

export const QUARANTINE_PASSES = 15;
export const REGRESSION_PASSES = 5;
/** The flake rate is counted over this many of the test's last results here. */
const RATE_WINDOW = 40;
const SHIFT_SPREADS = 4;
const SHIFT_MIN_HISTORY = 5;

const FAILED: readonly Verdict[] = ["fail", "error", "notrun"];
const failed = (v: Verdict) => FAILED.includes(v);

/** How a failure looks, numbers aside: two flakes of the same kind have the same signature. */
export function signature(t: Pick<TestRecord, "verdict" | "reason">): string | undefined {
  if (t.verdict === "pass" || t.verdict === "skip") return undefined;
  // A flaky result failed first: its reason is that first failure's.
  const verdict = t.verdict === "flaky" ? "fail" : t.verdict;
  return `${verdict}: ${stableTitle(t.reason ?? "")}`;
}

/** A commit as reports show it: a git hash shortened, a package's version whole. */
export const shortCommit = (c: string) => (/^[0-9a-f]{40}$/.test(c) ? c.slice(0, 12) : c);

const where = (p: PastResult | undefined) =>
  p
    ? `run ${p.run} of ${p.at.slice(0, 16).replace("T", " ")}${p.commit ? `, ${shortCommit(p.commit)}` : ""}`
    : "this run";

/** The past results that say something: a skip neither passes nor fails. */
const judged = (past: readonly PastResult[]) => past.filter((p) => p.verdict !== "skip");

/** Flake events: a flaky verdict, or a failure that the next result of the same commit here did not repeat. */
function flakes(past: readonly PastResult[]): PastResult[] {
  return past.filter(
    (p, i) =>
      p.verdict === "flaky" ||
      (failed(p.verdict) && past.slice(i + 1).find((q) => q.commit === p.commit)?.verdict === "pass"),
  );
}

/** Where a test stands in a cell, from its results there (oldest first): what `khil history` shows. */
export interface Standing {
  /** Its results that passed or failed (skips aside), and how many of the last RATE_WINDOW did not pass. */
  judged: number;
  recent: number;
  recentBad: number;
  flakes: PastResult[];
  /** Passes in a row at the end. */
  passesSince: number;
  /** A known flake not yet past its quarantine. */
  quarantined: boolean;
  /** The first failure of a streak of failures that runs to the end, after at least one pass. */
  firstFailure?: PastResult;
  /** Passes in a row before that streak. */
  passesBefore: number;
}

export function standing(history: readonly PastResult[]): Standing {
  const past = judged(history);
  const events = flakes(past);
  const passesSince = past.length - 1 - past.findLastIndex((p) => p.verdict !== "pass");
  const recent = past.slice(-RATE_WINDOW);
  const lastPass = past.findLastIndex((p) => p.verdict === "pass");
  const before = past.slice(0, lastPass + 1);
  return {
    judged: past.length,
    recent: recent.length,
    recentBad: recent.filter((p) => p.verdict !== "pass").length,
    flakes: events,
    passesSince,
    quarantined: events.length > 0 && passesSince < QUARANTINE_PASSES,
    ...(lastPass >= 0 && lastPass < past.length - 1 ? { firstFailure: past[lastPass + 1] } : {}),
    passesBefore: lastPass < 0 ? 0 : before.length - 1 - before.findLastIndex((p) => p.verdict !== "pass"),
  };
}

/** What the history says of one test's result that did not pass cleanly; undefined when it says nothing. */
export function judgeTest(
  now: Pick<TestRecord, "verdict" | "reason">,
  history: readonly PastResult[],
): TestHistory | undefined {
  if (!failed(now.verdict) && now.verdict !== "flaky") return undefined;
  const past = judged(history);
  const s = standing(past);
  const { passesSince } = s;
  if (s.flakes.length > 0) {
    const base = `known flaky here: ${s.recentBad} of its last ${s.recent} results did not pass (last flake: ${where(s.flakes.at(-1))})`;
    if (!failed(now.verdict)) return { state: "known-flaky", text: base };
    if (!s.quarantined)
      return {
        state: "known-flaky",
        text: `${base}; it had passed ${passesSince} times in a row since, so this failure counts`,
      };
    const seen = new Set(past.filter((p) => p.verdict !== "pass").map((p) => p.signature));
    const sig = signature(now);
    const quarantine = `quarantined until it passes ${QUARANTINE_PASSES} times in a row (${passesSince} so far)`;
    if (!seen.has(sig))
      return {
        state: "known-flaky",
        text: `${base}, ${quarantine}; but it never failed this way here before (${sig}), so this failure counts`,
      };
    return { state: "known-flaky", text: `${base}, ${quarantine}: not counted`, quarantined: true };
  }
  if (!failed(now.verdict)) return undefined;
  // A streak of failures up to now, after a streak of passes: the first failure is where it regressed (this
  // run, when the streak is only this run).
  const passes = passesSince > 0 ? passesSince : s.passesBefore;
  if (passes < REGRESSION_PASSES) return undefined;
  const first = passesSince > 0 ? undefined : s.firstFailure;
  return {
    state: "regression",
    text: `regression: it passed ${passes} times in a row here, then first failed at ${where(first)}`,
  };
}

/** A measure's median against its past medians in the cell: a sentence when it moved, else undefined. */
export function judgeMeasure(
  m: { name: string; unit: string; p50: number },
  past: readonly number[],
): string | undefined {
  if (past.length < SHIFT_MIN_HISTORY) return undefined;
  const sorted = [...past].sort((a, b) => a - b);
  const med = median(sorted);
  const mad = median(sorted.map((v) => Math.abs(v - med)));
  // 1.4826 MAD estimates a standard deviation; a floor keeps a history of equal values from calling any
  // change a shift.
  const spread = Math.max(1.4826 * mad, Math.abs(med) * 0.02, Number.EPSILON);
  const lo = sorted[0] ?? med;
  const hi = sorted.at(-1) ?? med;
  if (Math.abs(m.p50 - med) <= SHIFT_SPREADS * spread || (m.p50 >= lo && m.p50 <= hi)) return undefined;
  const f = (v: number) => formatValue(v, m.unit);
  return `${m.name} median ${f(m.p50)} is ${m.p50 > med ? "above" : "below"} its history here (median ${f(med)}, ${past.length} runs from ${f(lo)} to ${f(hi)})`;
}
