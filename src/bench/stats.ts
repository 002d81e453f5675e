import { median } from "../common/median.ts";
import { textTable } from "../common/table.ts";
/** Helpers of `khil bench`: timing, sample statistics, ratios against the raw tools, goals. */

export async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export interface Stats {
  min: number;
  median: number;
  max: number;
  samples: number[];
}

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  return { min: s[0] ?? Number.NaN, median: median(s), max: s[s.length - 1] ?? Number.NaN, samples };
}

export interface BenchRow {
  stage: string;
  khil: Stats;
  raw: Stats;
  /** khil's median over the raw median. */
  ratio: number;
  goal?: { ratio?: number; seconds?: number; met: boolean };
  note?: string;
}

export function row(
  stage: string,
  khil: number[],
  raw: number[],
  goal?: { ratio?: number; seconds?: number },
): BenchRow {
  const k = stats(khil);
  const r = stats(raw);
  const ratio = k.median / r.median;
  const out: BenchRow = { stage, khil: k, raw: r, ratio };
  if (goal) {
    const met =
      (goal.ratio === undefined || ratio <= goal.ratio) &&
      (goal.seconds === undefined || k.median <= goal.seconds);
    out.goal = { ...goal, met };
  }
  return out;
}

const f = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "-");

export function benchTable(rows: BenchRow[]): string {
  const head = ["stage", "khil s (min/med/max)", "raw s (min/med/max)", "ratio", "goal"];
  const body = rows.map((r) => [
    r.stage,
    `${f(r.khil.min)}/${f(r.khil.median)}/${f(r.khil.max)}`,
    `${f(r.raw.min)}/${f(r.raw.median)}/${f(r.raw.max)}`,
    f(r.ratio),
    r.goal
      ? `${[r.goal.ratio !== undefined ? `<= ${r.goal.ratio}x` : "", r.goal.seconds !== undefined ? `<= ${r.goal.seconds} s` : ""].filter(Boolean).join(", ")} ${r.goal.met ? "met" : "MISSED"}`
      : "",
  ]);
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.stage}: ${r.note}`);
  return [...textTable(head, body), ...notes].join("\n");
}
