/**
 * A suite's bounds on what its tests measured: a measurement judged, not only shown. Each bound decides the
 * verdict of one test (the check that printed the measurement), so every report — summary, results.json,
 * JUnit, Markdown, the matrix, bisect — sees a breach as that test failing, with the numbers.
 */
import { formatValue, type Measure } from "../parse/measures.ts";
import type { ParsedTest } from "../parse/types.ts";
import { testName } from "./results.ts";

export interface Bound {
  /** `test/subtest` whose verdict the bound decides: it passes only if it passed and the bound holds. */
  test: string;
  /** The measurement, by the name its line gives (`# khil-measure: NAME`). */
  measure: string;
  /** The most its median may be, in the measurement's unit, per accelerator (`tcg`, `kvm`). */
  median: Record<string, number>;
  /** Why the bound is what it is, shown with a breach. */
  reason: string;
}

/**
 * The half-width of a median's 95 % interval from the sample's own spread: McGill, Tukey and Larsen's notch,
 * 1.57 × IQR / √n. The statistic is deliberate: the samples the probe reports for this are paired differences
 * (each bpf_timer callback's lateness minus that of a user-space sleep taken right beside it), so what the host
 * did to both cancels sample by sample; a stalled host then widens the spread, and with it the interval, rather
 * than moving the median. A bound is breached only when the whole interval lies above it: a kernel that delays
 * every callback by 2 ms moves the median by 2 ms, while a host that stalls some samples moves only their tails.
 */
export function medianInterval(m: Pick<Measure, "n" | "p25" | "p50" | "p75">): { low: number; high: number } {
  const half = m.p25 === undefined || m.p75 === undefined ? 0 : (1.57 * (m.p75 - m.p25)) / Math.sqrt(m.n);
  return { low: m.p50 - half, high: m.p50 + half };
}

/** The bound in force for an accelerator; one the suite does not name gets the loosest, and says so. */
export function limitFor(b: Bound, accel: string): { limit: number; under: string } | undefined {
  const own = b.median[accel];
  if (own !== undefined) return { limit: own, under: accel };
  const loosest = Object.entries(b.median).sort((x, y) => y[1] - x[1])[0];
  return (
    loosest && { limit: loosest[1], under: `${accel} (no bound of its own: ${loosest[0]}'s, the loosest)` }
  );
}

/** One bound's finding: what to say, and whether it holds. */
export function judgeBound(
  b: Bound,
  m: Measure | undefined,
  accel: string,
): { holds: boolean; text: string } {
  const at = limitFor(b, accel);
  if (!at) return { holds: false, text: `bound on ${b.measure} names no accelerator` };
  if (!m) return { holds: false, text: `${b.measure} was not measured, so its bound cannot be judged` };
  if (m.p25 === undefined || m.p75 === undefined)
    return {
      holds: false,
      text: `${b.measure} has no quartiles (p25, p75): its median's interval cannot be judged`,
    };
  const { low, high } = medianInterval(m);
  const u = m.unit;
  const figures = `${b.measure} median ${formatValue(m.p50, u)} (95 % interval ${formatValue(low, u)} to ${formatValue(high, u)}, n=${m.n}, worst sample ${formatValue(m.max, u)})`;
  const limit = `${formatValue(at.limit, u)} allowed under ${at.under}`;
  return low > at.limit
    ? { holds: false, text: `${figures} above the ${limit}: ${b.reason}` }
    : { holds: true, text: `${figures} within the ${limit} (margin ${formatValue(at.limit - low, u)})` };
}

/**
 * Applies the bounds to a command's parsed tests in place: a bounded test that passed fails when its bound
 * is breached or cannot be judged, and its parent with it; one that failed or skipped keeps its verdict (it
 * has no trustworthy sample). A passing judgement is kept in the log, with its margin.
 */
export function applyBounds(
  tests: ParsedTest[],
  measures: readonly Measure[],
  bounds: readonly Bound[],
  accel: string,
): void {
  for (const b of bounds) {
    const t = tests.find((x) => testName(x) === b.test);
    if (t?.verdict !== "pass") continue;
    const found = judgeBound(
      b,
      measures.find((x) => x.name === b.measure),
      accel,
    );
    t.log = [t.log, `khil bound: ${found.text}`].filter(Boolean).join("\n");
    if (found.holds) continue;
    t.verdict = "fail";
    t.reason = found.text;
    const parent = t.subtest ? tests.find((x) => x.test === t.test && !x.subtest) : undefined;
    if (parent && parent.verdict !== "fail") {
      parent.verdict = "fail";
      parent.reason = `${testName(t)} breached its bound`;
    }
  }
}
