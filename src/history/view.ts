/** What `khil history` shows, from the database's rows: pure, so that the same rows give the same view. */
import { median } from "../common/median.ts";
import { textTable } from "../common/table.ts";
import { formatValue } from "../parse/measures.ts";
import type { Verdict } from "../report/results.ts";
import type { PastResult } from "./db.ts";
import { QUARANTINE_PASSES, shortCommit, standing } from "./judge.ts";

/** How many of the newest results a row shows, newest last. */
const LAST = 20;

const MARK: Record<Verdict, string> = {
  pass: ".",
  fail: "F",
  skip: "s",
  flaky: "f",
  error: "E",
  notrun: "N",
};

export interface TestView {
  cell: string;
  test: string;
  runs: number;
  /** The newest results as marks, oldest first: `.` pass, `F` fail, `f` flaky, `E` error, `N` not run, `s` skip. */
  last: string;
  /** Share of the results that did not pass, over those that passed or failed. */
  failRate: number;
  flakes: number;
  quarantined: boolean;
  passesInARow: number;
  /** The first failure of the failing streak it is in now. */
  failingSince?: { run: number; at: string; commit?: string };
}

export interface MeasureView {
  cell: string;
  measure: string;
  unit: string;
  runs: number;
  median: number;
  last: number;
  /** The newest medians, oldest first. */
  trend: number[];
}

export interface HistoryView {
  tests: TestView[];
  measures: MeasureView[];
}

export function historyView(
  results: readonly (PastResult & { cell: string; name: string })[],
  measures: readonly { cell: string; name: string; unit: string; p50: number }[],
): HistoryView {
  const byTest = new Map<string, (PastResult & { cell: string; name: string })[]>();
  for (const r of results) {
    const k = `${r.cell}\n${r.name}`;
    byTest.set(k, [...(byTest.get(k) ?? []), r]);
  }
  const tests = [...byTest.values()].map((rs): TestView => {
    const first = rs[0] as PastResult & { cell: string; name: string };
    const s = standing(rs);
    const bad = rs.filter((r) => r.verdict !== "pass" && r.verdict !== "skip").length;
    return {
      cell: first.cell,
      test: first.name,
      runs: rs.length,
      last: rs
        .slice(-LAST)
        .map((r) => MARK[r.verdict])
        .join(""),
      failRate: s.judged ? bad / s.judged : 0,
      flakes: s.flakes.length,
      quarantined: s.quarantined,
      passesInARow: s.passesSince,
      ...(s.firstFailure && s.passesSince === 0
        ? { failingSince: { run: s.firstFailure.run, at: s.firstFailure.at, commit: s.firstFailure.commit } }
        : {}),
    };
  });
  const byMeasure = new Map<string, { cell: string; name: string; unit: string; p50: number }[]>();
  for (const m of measures) {
    const k = `${m.cell}\n${m.name}`;
    byMeasure.set(k, [...(byMeasure.get(k) ?? []), m]);
  }
  const ms = [...byMeasure.values()].map((rows): MeasureView => {
    const first = rows[0] as (typeof rows)[number];
    const values = rows.map((r) => r.p50);
    return {
      cell: first.cell,
      measure: first.name,
      unit: first.unit,
      runs: rows.length,
      median: median(values),
      last: values.at(-1) ?? Number.NaN,
      trend: values.slice(-LAST),
    };
  });
  return { tests, measures: ms };
}

/** The view as two terminal tables: tests by cell, then measures by cell. */
export function historyText(v: HistoryView): string {
  if (!v.tests.length && !v.measures.length) return "no runs recorded";
  const state = (t: TestView) =>
    t.quarantined
      ? `quarantined (${t.passesInARow}/${QUARANTINE_PASSES} passes)`
      : t.failingSince
        ? `failing since run ${t.failingSince.run}${t.failingSince.commit ? ` (${shortCommit(t.failingSince.commit)})` : ""}`
        : t.flakes
          ? "flaky, out of quarantine"
          : "-";
  const tests = textTable(
    ["cell", "test", "runs", "last results (newest right)", "fail rate", "flakes", "state"],
    v.tests.map((t) => [
      t.cell,
      t.test,
      String(t.runs),
      t.last,
      `${(t.failRate * 100).toFixed(0)} %`,
      String(t.flakes),
      state(t),
    ]),
  );
  const f = (x: number, unit: string) => formatValue(x, unit);
  const measures = textTable(
    ["cell", "measure", "runs", "median", "last", "trend (oldest first)"],
    v.measures.map((m) => [
      m.cell,
      m.measure,
      String(m.runs),
      f(m.median, m.unit),
      f(m.last, m.unit),
      m.trend.map((x) => f(x, m.unit)).join(" "),
    ]),
  );
  return [
    ...tests,
    "(. pass, F fail, f flaky, E error, N not run, s skip)",
    ...(v.measures.length ? ["", ...measures] : []),
  ].join("\n");
}
