/**
 * What a cell's history says of a run, decided from the same test's (and the same measure's) past results in
 * the same cell. Pure: the database is read before and written after.
 *
 * - A **known flake**: the test failed now and then here (a `flaky` verdict, or a failure that the next run of
 *   the same known commit did not repeat: across commits, a failure then a pass is a bug and its fix; a tree
 *   with no commit, or with uncommitted changes, gives no such evidence). In the spirit of NIPA's stability
 *   rule, a flake is **quarantined** until it has passed QUARANTINE_PASSES times in a row again: while
 *   quarantined, a failure the way one of its flakes failed (the same verdict and reason, measured figures
 *   aside, exit codes and signals kept) is reported but does not fail the run. Any other failure counts, a
 *   failure that gives no reason always does, and a kernel splat, a problem or a harness fault fails the run
 *   whatever the history (verdict.ts asks the history about tests only).
 * - A **regression**: it had passed at least REGRESSION_PASSES times in a row here and fails now; the report
 *   names the run and commit of its first failure.
 * - A **measure that moved**: its median lies outside the cell's own past medians and more than
 *   SHIFT_SPREADS robust spreads from their median: a warning, never a failure.
 */
import { median } from "../common/median.ts";
import { formatValue } from "../parse/measures.ts";
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

/** Numbers that name what happened (an exit code, a signal, an errno) are kept; measured figures are not. */
const NAMING =
  /\b(?:exit(?:ed)?(?: with)?(?: code| status)?|code|status|signal|errno|error|SIG[A-Z]+)[\s:=]*$/i;

/** A reason with the figures that differ between two runs of the same failure taken out. */
export function stableReason(text: string): string {
  const hexless = text.replace(/\b0x[0-9a-f]+\b/g, "X");
  return hexless
    .replace(/-?\d+(?:\.\d+)?/g, (n: string, at: number) =>
      NAMING.test(hexless.slice(Math.max(0, at - 24), at)) ? n : "N",
    )
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * How a failure looks, figures aside: two flakes of the same kind have the same signature. A flaky result
 * (or one rerun in vain) is known by its first attempt's reason. A failure that says nothing has none: it
 * can never be matched to another.
 */
export function signature(t: Pick<TestRecord, "verdict" | "reason" | "firstReason">): string | undefined {
  if (t.verdict === "pass" || t.verdict === "skip") return undefined;
  const reason = (t.firstReason ?? t.reason ?? "").trim();
  if (!reason) return undefined;
  const verdict = t.verdict === "flaky" ? "fail" : t.verdict;
  return `${verdict}: ${stableReason(reason)}`;
}

/** A commit that names the code: a tree with uncommitted changes (`-dirty`) or none at all does not. */
const knownCommit = (c: string | undefined): c is string => Boolean(c) && !c?.endsWith("-dirty");

/** A commit as reports show it: a git hash shortened, a package's version whole. */
export const shortCommit = (c: string) => (/^[0-9a-f]{40}$/.test(c) ? c.slice(0, 12) : c);

const where = (p: PastResult | undefined) =>
  p
    ? `run ${p.run} of ${p.at.slice(0, 16).replace("T", " ")}${p.commit ? `, ${shortCommit(p.commit)}` : ""}`
    : "this run";

/** The past results that say something: a skip neither passes nor fails. */
const judged = (past: readonly PastResult[]) => past.filter((p) => p.verdict !== "skip");

/** Flake events: a flaky verdict, or a failure that the next result of the same known commit did not repeat. */
function flakes(past: readonly PastResult[]): PastResult[] {
  return past.filter(
    (p, i) =>
      p.verdict === "flaky" ||
      (failed(p.verdict) &&
        knownCommit(p.commit) &&
        past.slice(i + 1).find((q) => q.commit === p.commit)?.verdict === "pass"),
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

/**
 * What the history says of one test's result that did not pass cleanly; undefined when it says nothing.
 * Without `quarantine` (bisect, whose question is where a failure began), a known flake is named but counts.
 */
export function judgeTest(
  now: Pick<TestRecord, "verdict" | "reason" | "firstReason">,
  history: readonly PastResult[],
  quarantine = true,
): TestHistory | undefined {
  if (!failed(now.verdict) && now.verdict !== "flaky") return undefined;
  const s = standing(history);
  const { passesSince } = s;
  const base = `known flaky here: ${s.recentBad} of its last ${s.recent} results did not pass (last flake: ${where(s.flakes.at(-1))})`;
  if (s.flakes.length > 0 && !failed(now.verdict)) return { state: "known-flaky", text: base };
  if (s.flakes.length > 0 && s.quarantined) {
    const sig = signature(now);
    const held = `quarantined until it passes ${QUARANTINE_PASSES} times in a row (${passesSince} so far)`;
    // Only the flakes' own ways of failing are excused: not an old bug's, and never a failure without a reason.
    if (!sig || !s.flakes.some((f) => f.signature === sig))
      return {
        state: "known-flaky",
        text: `${base}, ${held}; but none of its flakes failed this way (${sig ?? "no reason given"}), so this failure counts`,
      };
    if (!quarantine)
      return { state: "known-flaky", text: `${base}: it counts here all the same (no quarantine)` };
    return { state: "known-flaky", text: `${base}, ${held}: not counted`, quarantined: true };
  }
  if (!failed(now.verdict)) return undefined;
  // A streak of failures up to now, after a streak of passes: the first failure is where it regressed (this
  // run, when the streak is only this run).
  const passes = passesSince > 0 ? passesSince : s.passesBefore;
  if (passes < REGRESSION_PASSES)
    return s.flakes.length
      ? { state: "known-flaky", text: `${base}; out of quarantine, so this failure counts` }
      : undefined;
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
