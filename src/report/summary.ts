import { textTable } from "../common/table.ts";
import { type GuestFacts, jitMode } from "../guest/facts.ts";
import { againstBaseline } from "../parse/measures.ts";
import { RESOLVED_FRAME } from "../parse/splats.ts";
import { FAULT_MEANING, findings, runFault } from "./fault.ts";
import { type ArchRun, type Results, testName } from "./results.ts";
import { seriesLines } from "./series.ts";

/** What the guest itself said it ran (the kernel, the accelerator, the JIT mode in force), and where. */
function guestLine(g: GuestFacts, run: ArchRun): string {
  return `${g.kernelRelease}, ${g.accel}, ${g.cpus} CPUs, ${jitMode(g)}, clocksource ${g.clocksource}${engineNote(run)}`;
}

function engineNote(run: ArchRun): string {
  return run.engine ? `, LAVA job ${run.engine.job}` : "";
}

function header(run: ArchRun): string {
  const g = run.guest;
  if (!g)
    return `${run.arch}: ${run.status}${run.error ? ` (${run.error.stage}: ${run.error.message.split("\n")[0]})` : ""}`;
  const jit = jitMode(g);
  const res = g.hrtimerResolutionNs === null ? "?" : `${g.hrtimerResolutionNs} ns`;
  // Never silently: a restored guest says so and from what; one that could not be restored says why.
  const ready = g.restored
    ? `restored from snapshot ${g.restored.snapshot} (saved ${g.restored.savedAt}) in ${g.restored.seconds.toFixed(2)} s`
    : `boot ${g.bootSeconds.toFixed(1)} s${g.coldBecause ? ` (not restored: ${g.coldBecause})` : ""}`;
  return `${run.arch}: ${g.kernelRelease} (config ${g.configHash}), ${g.accel}, ${g.cpus} CPUs, ${jit}, clocksource ${g.clocksource}, hrtimer resolution ${res}, ${ready}${engineNote(run)}`;
}

/** The stages one after the other, each waiting for the one before: a run's critical path. */
const CRITICAL_PATH = ["build", "selftests", "boot", "facts", "push", "run"];

/** Where a run's time went: the critical path, and what ran beside the build. */
export function timeLine(t: Record<string, number>): string | undefined {
  const s = (k: string) => `${k} ${(t[k] ?? 0).toFixed(1)} s`;
  const path = CRITICAL_PATH.filter((k) => t[k] !== undefined).map(s);
  if (!path.length) return undefined;
  const total = t.total === undefined ? "" : ` = ${t.total.toFixed(1)} s`;
  const beside =
    t.packages === undefined ? "" : `; beside the build: guest packages ${t.packages.toFixed(1)} s`;
  return `time: ${path.join(" + ")}${total}${beside}`;
}

export const MEASURE_HEAD = [
  "cell",
  "kernel",
  "accel",
  "measure",
  "n",
  "p50",
  "p99",
  "max",
  "p50/p99 vs baseline",
];

function figure(v: number, unit: string): string {
  return unit === "ns" ? `${(v / 1000).toFixed(1)} us` : `${v} ${unit}`;
}

/** A row per measurement of every run, with its ratio to the baseline the same run measured beside it. */
export function measureRows(runs: readonly ArchRun[]): string[][] {
  return runs.flatMap((run) =>
    (run.measures ?? []).map((m) => {
      const vs = againstBaseline(m, run.measures ?? []);
      return [
        run.cell ?? run.arch,
        run.guest?.kernelRelease ?? "?",
        run.guest?.accel ?? "?",
        m.name,
        String(m.n),
        figure(m.p50, m.unit),
        figure(m.p99, m.unit),
        figure(m.max, m.unit),
        vs ? `${vs.p50.toFixed(2)}x / ${vs.p99.toFixed(2)}x (${m.baseline})` : "-",
      ];
    }),
  );
}

const MARK: Record<string, string> = {
  pass: "PASS",
  fail: "FAIL",
  skip: "SKIP",
  flaky: "FLAKY",
  error: "ERROR",
  notrun: "NOTRUN",
};

/** The frames of a decoded splat that name a file and line, as the terminal shows them under the finding. */
function decodedFrames(s: ArchRun["splats"][number], most = 12): string[] {
  if (!s.decoded) return s.decodeError ? [`    (trace not decoded: ${s.decodeError})`] : [];
  // The call chain: the unreliable entries (`? `, stale addresses an unwinder found beside it) are left to
  // results.json, where there is a chain to show.
  const located = s.decoded.split("\n").filter((l) => RESOLVED_FRAME.test(l));
  const chain = located.filter((l) => !/^\s*\? /.test(l));
  const frames = chain.length ? chain : located;
  return [
    `    decoded (${s.kind} ${s.fingerprint ?? ""}):`.replace(" )", ")"),
    ...frames.slice(0, most).map((l) => `      ${l.trim()}`),
    ...(frames.length > most ? [`      ... ${frames.length - most} more frames in results.json`] : []),
  ];
}

/** Up to this many results a run's summary lists each; beyond, only those that did not pass. */
const LIST_ALL_UP_TO = 80;

/** The terminal summary: a header per arch from the guest's own facts, then a line per test. */
export function summaryTable(r: Results): string {
  const out: string[] = [];
  for (const run of r.runs) {
    out.push(header(run));
    if (run.series) out.push(...seriesLines(run.series).map((l) => `  ${l}`));
    const unmet = run.configUnmet ?? [];
    if (unmet.length)
      out.push(
        `  config: ${unmet.length} option${unmet.length > 1 ? "s" : ""} of the tree's selftests config did not land (not fatal):`,
        ...unmet.slice(0, 5).map((u) => `    ${u}`),
        ...(unmet.length > 5 ? [`    ... ${unmet.length - 5} more in results.json (configUnmet)`] : []),
      );
    // A whole selftests run (hundreds of tests) lists only what did not pass: the rest is in the reports.
    const listed =
      run.tests.length > LIST_ALL_UP_TO ? run.tests.filter((t) => t.verdict !== "pass") : run.tests;
    const width = Math.max(10, ...listed.map((t) => testName(t).length));
    if (listed.length < run.tests.length)
      out.push(
        `  ${run.tests.length - listed.length} passed tests and subtests not listed (results.json, report.html)`,
      );
    for (const t of listed) {
      const why = t.reason ? `  (${t.reason})` : "";
      out.push(`  ${testName(t).padEnd(width)}  ${MARK[t.verdict]}${why}`);
      if (t.history) out.push(`  ${"".padEnd(width)}  history: ${t.history.text}`);
    }
    for (const m of run.history?.measures ?? []) out.push(`  history: ${m}`);
    const measured = measureRows([run]);
    if (measured.length) out.push(...textTable(MEASURE_HEAD, measured).map((l) => `  ${l}`));
    for (const f of findings(run)) out.push(`  ${f.what}: ${f.text}`);
    for (const s of run.splats) out.push(...decodedFrames(s));
    const time = timeLine(run.timings);
    if (time) out.push(`  ${time}`);
    for (const sh of run.shards ?? [])
      out.push(
        `  ${sh.dir}: ${sh.status}, ${sh.tests} tests in ${sh.seconds.toFixed(0)} s (console and logs in its directory of the run's)`,
      );
    const n = (v: string) => run.tests.filter((t) => t.verdict === v).length;
    const more = (["flaky", "notrun"] as const)
      .filter((v) => n(v))
      .map((v) => `, ${n(v)} ${v === "notrun" ? "not run" : v}`);
    const excused = run.tests.filter((t) => t.history?.quarantined).length;
    if (excused) more.push(` (${excused} of them known flaky, quarantined: not counted)`);
    out.push(
      `  => ${run.status.toUpperCase()}: ${n("pass")} passed, ${n("fail")} failed, ${n("skip")} skipped${more.join("")}`,
    );
    const fault = runFault(run);
    if (fault) out.push(`     fault: ${fault}: ${FAULT_MEANING[fault]}`);
  }
  return out.join("\n");
}

function columns(r: Results): {
  names: string[];
  tests: string[];
  cell: (run: ArchRun, test: string) => string;
} {
  const names = r.runs.map((run) => run.cell ?? run.arch);
  const tests = [...new Set(r.runs.flatMap((run) => run.tests.map(testName)))];
  const cell = (run: ArchRun, test: string) => {
    const t = run.tests.find((x) => testName(x) === test);
    if (t?.history?.quarantined) return "FLAKE";
    if (t) return MARK[t.verdict] ?? t.verdict;
    return run.error ? `(${run.error.stage})` : "-";
  };
  return { names, tests, cell };
}

/** Past this many tests, rows that read the same in every cell are summed up instead of shown. */
const MATRIX_ROWS = 30;

/**
 * One table for a whole matrix: a row per test, a column per cell, and each cell's status. A matrix of many
 * tests (a whole selftests suite) shows the rows that differ between cells, and counts the rest.
 */
export function matrixTable(r: Results): string {
  const { names, tests: every, cell } = columns(r);
  // Only a row that passed or skipped the same way everywhere is summed up: a failure keeps its row.
  const same = (t: string) => {
    const marks = new Set(r.runs.map((run) => cell(run, t)));
    return marks.size === 1 && ["PASS", "SKIP"].includes([...marks][0] ?? "");
  };
  const tests = every.length > MATRIX_ROWS ? every.filter((t) => !same(t)) : every;
  const hidden = every.filter((t) => !tests.includes(t));
  const first = Math.max(6, ...tests.map((t) => t.length));
  const widths = names.map((n) => Math.max(n.length, 7));
  const row = (head: string, vals: string[]) =>
    [head.padEnd(first), ...vals.map((v, i) => v.padEnd(widths[i] ?? 7))].join("  ").trimEnd();
  const lines = [row("test", names)];
  for (const t of tests)
    lines.push(
      row(
        t,
        r.runs.map((run) => cell(run, t)),
      ),
    );
  lines.push(
    row(
      "status",
      r.runs.map((run) => run.status.toUpperCase()),
    ),
    row(
      "fault",
      r.runs.map((run) => runFault(run) ?? "-"),
    ),
  );
  if (hidden.length) {
    const by = new Map<string, number>();
    for (const t of hidden)
      by.set(cell(r.runs[0] as ArchRun, t), (by.get(cell(r.runs[0] as ArchRun, t)) ?? 0) + 1);
    lines.push(
      `and ${hidden.length} tests the same in every cell: ${[...by].map(([v, n]) => `${n} ${v}`).join(", ")}`,
    );
  }
  const measured = measureRows(r.runs);
  if (measured.length) lines.push("", ...textTable(MEASURE_HEAD, measured));
  for (const run of r.runs)
    if (run.guest) lines.push(`${run.cell ?? run.arch}: ${guestLine(run.guest, run)}`);
  for (const run of r.runs) {
    for (const f of findings(run)) lines.push(`${run.cell ?? run.arch}: ${f.what}: ${f.text.split("\n")[0]}`);
    for (const [test, why] of whyFailed(run)) lines.push(`${run.cell ?? run.arch}: ${test} failed: ${why}`);
  }
  for (const [kind, items] of historyNotes(r))
    for (const [where, text] of items) lines.push(`${where}: ${kind}: ${text}`);
  if (r.runs.some((run) => run.tests.some((t) => t.history?.quarantined)))
    lines.push("FLAKE: failed the way it has flaked here before, quarantined: not counted (docs/history.md)");
  return lines.join("\n");
}

/**
 * What the history said of the run, by kind: new regressions, known flakes (quarantined or not), and
 * measures that moved; each as [where, text].
 */
export function historyNotes(r: Results): [string, [string, string][]][] {
  const by = (pick: (run: ArchRun) => [string, string][]) => r.runs.flatMap(pick);
  const tests = (state: string) => (run: ArchRun) =>
    run.tests
      .filter((t) => t.history?.state === state)
      .map((t): [string, string] => [`${run.cell ?? run.arch}: ${testName(t)}`, t.history?.text ?? ""]);
  const notes: [string, [string, string][]][] = [
    ["new regressions", by(tests("regression"))],
    ["known flakes", by(tests("known-flaky"))],
    ["measures that moved", by((run) => (run.history?.measures ?? []).map((m) => [run.cell ?? run.arch, m]))],
  ];
  return notes.filter(([, items]) => items.length > 0);
}

/**
 * Each test's pass rate where one cell ran several times (`--repeat`): how often it passed of the runs in
 * which it gave a result, its skips apart. Undefined when no cell ran twice.
 */
export function passRates(r: Results): string | undefined {
  const groups = new Map<string, ArchRun[]>();
  for (const run of r.runs)
    groups.set(run.cell ?? run.arch, [...(groups.get(run.cell ?? run.arch) ?? []), run]);
  const rows: string[][] = [];
  for (const [where, runs] of groups) {
    if (runs.length < 2) continue;
    for (const test of [...new Set(runs.flatMap((run) => run.tests.map(testName)))]) {
      const got = runs.flatMap((run) => run.tests.filter((t) => testName(t) === test));
      const passed = got.filter((t) => t.verdict === "pass" || t.verdict === "flaky").length;
      const skipped = got.filter((t) => t.verdict === "skip").length;
      const judged = got.length - skipped;
      rows.push([
        where,
        test,
        judged ? `${passed}/${judged}` : "-",
        judged ? (passed / judged).toFixed(2) : "-",
        skipped ? `${skipped} skipped` : "",
        runs.length - got.length ? `${runs.length - got.length} without a result` : "",
      ]);
    }
  }
  if (!rows.length) return undefined;
  return [
    `pass rates over repeated runs:`,
    ...textTable(["cell", "test", "passed", "rate", "", ""], rows).map((l) => `  ${l}`),
  ].join("\n");
}

/** Each failed test that says why (a breached bound with its figures, a check's worst sample): for the tables. */
function whyFailed(run: ArchRun): [string, string][] {
  return run.tests
    .filter((t) => t.verdict === "fail" && t.reason && !t.history?.quarantined)
    .map((t) => [testName(t), (t.reason ?? "").split("\n")[0] ?? ""]);
}

/** The same table in Markdown, for a CI job summary. */
export function toMarkdown(r: Results): string {
  const { names, tests, cell } = columns(r);
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [
    "## khil results",
    "",
    `| test | ${names.map(esc).join(" | ")} |`,
    `| --- | ${names.map(() => "---").join(" | ")} |`,
    ...tests.map((t) => `| ${esc(t)} | ${r.runs.map((run) => cell(run, t)).join(" | ")} |`),
    `| **status** | ${r.runs.map((run) => `**${run.status}**`).join(" | ")} |`,
    `| fault | ${r.runs.map((run) => runFault(run) ?? "-").join(" | ")} |`,
    "",
  ];
  const measured = measureRows(r.runs);
  if (measured.length)
    lines.push(
      `| ${MEASURE_HEAD.join(" | ")} |`,
      `| ${MEASURE_HEAD.map(() => "---").join(" | ")} |`,
      ...measured.map((row) => `| ${row.map(esc).join(" | ")} |`),
      "",
    );
  for (const run of r.runs) {
    const g = run.guest;
    const [title, ...patches] = run.series ? seriesLines(run.series) : [];
    if (title)
      lines.push(`- ${esc(run.cell ?? run.arch)}: ${esc(title)}`, ...patches.map((p) => `  - ${esc(p)}`));
    if (g) lines.push(`- ${esc(run.cell ?? run.arch)}: ${esc(guestLine(g, run))}`);
    for (const f of findings(run))
      lines.push(`- ${esc(run.cell ?? run.arch)}: **${f.what}**: ${esc(f.text.split("\n")[0] ?? "")}`);
    for (const [test, why] of whyFailed(run))
      lines.push(`- ${esc(run.cell ?? run.arch)}: **${esc(test)}** failed: ${esc(why)}`);
  }
  // Apart, as a job summary should: what broke since last time, and what is known to come and go.
  for (const [kind, items] of historyNotes(r))
    lines.push(
      "",
      `### ${kind[0]?.toUpperCase()}${kind.slice(1)}`,
      "",
      ...items.map(([w, t]) => `- ${esc(w)}: ${esc(t)}`),
    );
  return `${lines.join("\n")}\n`;
}
