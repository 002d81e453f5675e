/**
 * Measurements a test program prints beside its results, one KTAP diagnostic line each (any indentation):
 *   # khil-measure: NAME unit=ns n=1000 min=.. [p25=..] p50=.. [p75=..] p99=.. max=.. [baseline=OTHER_NAME]
 * The quartiles are optional (older probes print none); a bound on a median needs them (report/bounds.ts).
 * `baseline` names the measurement of the same run this one is to be compared with (bpf_timer's callback
 * lateness against a user-space clock_nanosleep's), so that reports can show the ratio.
 */

export interface Measure {
  name: string;
  unit: string;
  n: number;
  min: number;
  p25?: number;
  p50: number;
  p75?: number;
  p99: number;
  max: number;
  baseline?: string;
}

const LINE = /^[\s#]*#\s*khil-measure:\s+(\S+)\s+(.*)$/;
const NUMBERS = ["n", "min", "p50", "p99", "max"] as const;
const QUARTILES = ["p25", "p75"] as const;
const NUMBER = /^-?\d+(\.\d+)?$/;

/** A measured value as reports show it: nanoseconds in us or ms, anything else with its unit. */
export function formatValue(v: number, unit: string): string {
  if (unit !== "ns") return `${v} ${unit}`;
  return Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(2)} ms` : `${(v / 1e3).toFixed(1)} us`;
}

/** The measurements in a command's output; a line missing a figure is a problem, not a measurement. */
export function parseMeasures(text: string): { measures: Measure[]; problems: string[] } {
  const measures: Measure[] = [];
  const problems: string[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line.trim());
    if (!m?.[1]) continue;
    const kv = new Map([...(m[2] ?? "").matchAll(/(\w+)=(\S+)/g)].map((x) => [x[1] ?? "", x[2] ?? ""]));
    // a figure that is absent, or an optional one that is there but not a number
    const missing: string[] = [
      ...NUMBERS.filter((k) => !NUMBER.test(kv.get(k) ?? "")),
      ...QUARTILES.filter((k) => kv.has(k) && !NUMBER.test(kv.get(k) ?? "")),
    ];
    if (missing.length || !kv.get("unit")) {
      problems.push(
        `measurement ${m[1]} lacks ${[...missing, ...(kv.get("unit") ? [] : ["unit"])].join(", ")}: ${line.trim()}`,
      );
      continue;
    }
    const num = (k: (typeof NUMBERS)[number] | (typeof QUARTILES)[number]) => Number(kv.get(k));
    const quartiles = Object.fromEntries(QUARTILES.filter((k) => kv.has(k)).map((k) => [k, num(k)]));
    const baseline = kv.get("baseline");
    measures.push({
      name: m[1],
      unit: kv.get("unit") ?? "",
      n: num("n"),
      min: num("min"),
      p50: num("p50"),
      p99: num("p99"),
      max: num("max"),
      ...quartiles,
      ...(baseline ? { baseline } : {}),
    });
  }
  return { measures, problems };
}

/** `this / baseline` at p50 and p99, where the run measured the baseline this measurement names. */
export function againstBaseline(
  m: Measure,
  all: readonly Measure[],
): { p50: number; p99: number } | undefined {
  const b = m.baseline ? all.find((x) => x.name === m.baseline) : undefined;
  if (!b || b.p50 <= 0 || b.p99 <= 0) return undefined;
  return { p50: m.p50 / b.p50, p99: m.p99 / b.p99 };
}
