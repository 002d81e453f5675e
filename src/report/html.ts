/**
 * `report.html`: one self-contained file per run directory (it opens from the file system, with no network):
 * the verdict first, the cell x test grid, what the kernel reported with each splat's fingerprint, the
 * latency distributions (uPlot, inlined), and where each run's time went. The page is built here as static
 * HTML so that everything but the plots reads without JavaScript; the plots draw from the data embedded
 * beside them.
 */
import { readyMeasure } from "../guest/facts.ts";
import { faults, findings, runFault } from "./fault.ts";
import { type ArchRun, type Results, splatWhen, type TestRecord, testName } from "./results.ts";
import { allPassed } from "./verdict.ts";

/** What the page inlines: uPlot's script and style, read by the caller (this module reads no files). */
export interface HtmlAssets {
  uplotJs: string;
  uplotCss: string;
}

export const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const STATUS_CLASS: Record<string, string> = {
  pass: "ok",
  passed: "ok",
  skip: "skip",
  skipped: "skip",
  flaky: "warn",
  fail: "bad",
  failed: "bad",
  error: "err",
  notrun: "bad",
};

const where = (run: ArchRun) => run.cell ?? run.arch;

function verdictOf(r: Results): { word: string; cls: string } {
  if (!r.runs.length) return { word: "NO RUNS", cls: "err" };
  if (allPassed(r)) return { word: "PASSED", cls: "ok" };
  if (r.runs.some((x) => x.status === "failed")) return { word: "FAILED", cls: "bad" };
  return { word: "ERROR", cls: "err" };
}

function cellMark(t: TestRecord | undefined, run: ArchRun, href: string | undefined): string {
  if (!t) return `<td class="none">${run.error ? `(${esc(run.error.stage)})` : "-"}</td>`;
  const word = t.history?.quarantined ? "FLAKE" : t.verdict.toUpperCase();
  const cls = t.history?.quarantined ? "warn" : (STATUS_CLASS[t.verdict] ?? "");
  const title = [t.reason, t.history?.text].filter(Boolean).join(" | ");
  const body = href
    ? `<a href="${esc(href.split("/").map(encodeURIComponent).join("/"))}">${word}</a>`
    : word;
  return `<td class="${cls}" title="${esc(title)}">${body}</td>`;
}

/** The grid: a row per test, a column per run, each mark linking to the log it came from. */
function grid(r: Results, logHref: (run: ArchRun, t: TestRecord) => string | undefined): string {
  const tests = [...new Set(r.runs.flatMap((run) => run.tests.map(testName)))];
  const head = r.runs.map((run) => `<th>${esc(where(run))}</th>`).join("");
  const rows = tests.map((name) => {
    const cells = r.runs
      .map((run) => {
        const t = run.tests.find((x) => testName(x) === name);
        return cellMark(t, run, t && logHref(run, t));
      })
      .join("");
    return `<tr><th class="test">${esc(name)}</th>${cells}</tr>`;
  });
  const status = r.runs
    .map((run) => `<td class="${STATUS_CLASS[run.status] ?? ""}"><b>${run.status.toUpperCase()}</b></td>`)
    .join("");
  const fault = r.runs.map((run) => `<td>${esc(runFault(run) ?? "-")}</td>`).join("");
  return `<table class="grid" id="grid"><thead><tr><th>test</th>${head}</tr></thead><tbody>${rows.join("")}<tr class="sum"><th>status</th>${status}</tr><tr><th>fault</th>${fault}</tr></tbody></table>`;
}

function findingsSection(r: Results): string {
  const items = r.runs.flatMap((run) => {
    const splats = run.splats.map(
      (s) =>
        `<div class="splat" data-fingerprint="${esc(s.fingerprint ?? "")}"><h3>${esc(where(run))}: kernel ${esc(s.kind)} during ${esc(splatWhen(s))}${s.fingerprint ? ` <code class="fp">${esc(s.fingerprint)}</code>` : ""}</h3>${s.decoded ? `<p>decoded by the tree's scripts/decode_stacktrace.sh:</p><pre class="decoded">${esc(s.decoded)}</pre>` : `${s.decodeError ? `<p>not decoded: ${esc(s.decodeError)}</p>` : ""}<pre>${esc(s.excerpt)}</pre>`}</div>`,
    );
    const other = findings(run)
      .filter((f) => !f.what.startsWith("kernel "))
      .map(
        (f) =>
          `<li class="${f.class === "harness" ? "err" : "bad"}">${esc(where(run))}: <b>${esc(f.what)}</b>: ${esc(f.text)}</li>`,
      );
    const failed = faults(run)
      .filter((f) => f.what.startsWith("test "))
      .map((f) => `<li class="bad">${esc(where(run))}: <b>${esc(f.what)}</b>: ${esc(f.text)}</li>`);
    const history = run.tests
      .filter((t) => t.history)
      .map(
        (t) => `<li class="warn">${esc(where(run))}: ${esc(testName(t))}: ${esc(t.history?.text ?? "")}</li>`,
      );
    const moved = (run.history?.measures ?? []).map(
      (m) => `<li class="warn">${esc(where(run))}: ${esc(m)}</li>`,
    );
    const lists = [...other, ...failed, ...history, ...moved];
    return [...splats, ...(lists.length ? [`<ul>${lists.join("")}</ul>`] : [])];
  });
  return items.length ? `<section id="findings"><h2>What was found</h2>${items.join("")}</section>` : "";
}

type Measured = NonNullable<ArchRun["measures"]>[number];

/** Quantile -> value in microseconds: the distribution as the probe summarised it. */
function quantiles(m: Measured, floor?: number) {
  const q = [0, ...(m.p25 === undefined ? [] : [25]), 50, ...(m.p75 === undefined ? [] : [75]), 99, 100];
  const v = [
    m.min,
    ...(m.p25 === undefined ? [] : [m.p25]),
    m.p50,
    ...(m.p75 === undefined ? [] : [m.p75]),
    m.p99,
    m.max,
  ];
  return { name: m.name, q, v: v.map((x) => (floor === undefined ? x : Math.max(x, floor)) / 1000) };
}

/** One plot's data: x values, a line per series (null where it has no point), and a bound drawn across. */
interface Plot {
  title: string;
  log: boolean;
  x: string;
  y: string;
  xs: number[];
  series: { name: string; v: (number | null)[] }[];
  bound?: number;
  /** x counts runs: ticks on whole numbers only. */
  whole?: boolean;
}

const byQuantile = (title: string, log: boolean, qs: ReturnType<typeof quantiles>[]) => ({
  title,
  log,
  x: "quantile (%)",
  y: "us",
  xs: qs[0]?.q ?? [],
  series: qs.map(({ name, v }) => ({ name, v })),
});

/**
 * Each run's measures for the plots: the latencies on a log scale (bpf_timer's beside the user-space
 * baseline), and each measure the suite bounds on its own linear plot with the bound in force drawn on it.
 */
function plotData(r: Results): Plot[] {
  return r.runs.flatMap((run) => {
    const ns = (run.measures ?? []).filter((m) => m.unit === "ns");
    // bpf_timer's lateness and the user-space baseline's side by side, whether or not a bound is on either.
    const latencies = ns.filter((m) => m.min >= 0);
    return [
      ...(latencies.length
        ? [
            byQuantile(
              `${where(run)}: latency by quantile (us)`,
              true,
              latencies.map((m) => quantiles(m, 1)),
            ),
          ]
        : []),
      ...ns
        .filter((m) => m.limit)
        .map((m) => ({
          ...byQuantile(
            `${where(run)}: ${m.name} by quantile (us); bound on its median ${(m.limit?.value ?? 0) / 1000} us under ${m.limit?.under}`,
            false,
            [quantiles(m)],
          ),
          bound: (m.limit?.value ?? 0) / 1000,
        })),
    ];
  });
}

/** A unit's values as plotted: nanoseconds in microseconds, as the latency plots show them. */
const SCALE: Record<string, { unit: string; by: number }> = { ns: { unit: "us", by: 1000 } };

/**
 * Where history exists, each run's measures over the cell's past runs and this one (the last point), a plot
 * per unit: a median creeping up shows here long before it breaks a bound or moves past the history's spread.
 */
function trendData(r: Results): Plot[] {
  return r.runs.flatMap((run) => {
    const trends = run.history?.trends ?? [];
    const now = new Map<string, number>([
      ...(run.measures ?? []).map((m) => [m.name, m.p50] as const),
      ...(run.guest ? [[readyMeasure(run.guest), run.guest.bootSeconds] as const] : []),
    ]);
    return [...new Set(trends.map((t) => t.unit))].map((unit) => {
      const of = trends.filter((t) => t.unit === unit);
      const n = Math.max(...of.map((t) => t.past.length)) + 1;
      const scale = SCALE[unit] ?? { unit, by: 1 };
      return {
        title: `${where(run)}: medians over the cell's last ${n - 1} run${n === 2 ? "" : "s"} and this one (${scale.unit})`,
        log: false,
        x: "run (this one last)",
        whole: true,
        y: scale.unit,
        xs: Array.from({ length: n }, (_, i) => i - n + 1),
        series: of.map((t) => {
          // A measure new to some past runs starts where it was first recorded (null before, no line).
          const v = [...Array(n - 1 - t.past.length).fill(null), ...t.past, now.get(t.name) ?? null];
          return { name: t.name, v: v.map((x) => (x === null ? null : x / scale.by)) };
        }),
      };
    });
  });
}

const STAGES = ["build", "selftests", "boot", "facts", "push", "run"];

function timingSection(r: Results): string {
  const rows = r.runs.filter((run) => STAGES.some((s) => run.timings[s] !== undefined));
  if (!rows.length) return "";
  const max = Math.max(...rows.map((run) => STAGES.reduce((a, s) => a + (run.timings[s] ?? 0), 0)), 1);
  const bars = rows.map((run) => {
    const parts = STAGES.filter((s) => run.timings[s] !== undefined).map((s) => {
      const v = run.timings[s] ?? 0;
      return `<span class="stage st-${s}" style="width:${((100 * v) / max).toFixed(2)}%" title="${s} ${v.toFixed(1)} s">${v / max > 0.08 ? `${s} ${v.toFixed(1)} s` : ""}</span>`;
    });
    return `<div class="timing"><span class="who">${esc(where(run))}</span><span class="bar">${parts.join("")}</span></div>`;
  });
  return `<section id="timings"><h2>Where the time went</h2>${bars.join("")}</section>`;
}

export const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
.verdict{font-size:2em;font-weight:700;padding:.3em .6em;display:inline-block;border-radius:.2em}
.ok{background:#d4f4d4}.bad{background:#f8d0d0}.err{background:#f4e0a8}.warn{background:#fbe9c6}.skip{background:#e4e4e4}
table.grid{border-collapse:collapse;margin:1em 0}table.grid td,table.grid th{border:1px solid #ccc;padding:.2em .6em;text-align:center}
table.grid th.test{text-align:left;font-weight:400;font-family:monospace}
pre{background:#f6f6f6;padding:.6em;overflow:auto;max-height:30em;font-size:12px}
code.fp{background:#eef;padding:0 .3em}
.timing{display:flex;align-items:center;margin:.2em 0}.who{width:14em;font-family:monospace}
.bar{flex:1;display:flex;height:1.4em;background:#f2f2f2}.stage{overflow:hidden;white-space:nowrap;font-size:11px;padding-left:2px;border-right:1px solid #fff}
.st-build{background:#9ec5fe}.st-selftests{background:#a3cfbb}.st-boot{background:#ffda6a}.st-facts{background:#ddd}.st-push{background:#c5b3e6}.st-run{background:#f1aeb5}
.plot{display:inline-block;margin:.5em 1em .5em 0}
table.steps{border-collapse:collapse}table.steps td,table.steps th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
.timeline{display:flex;gap:2px;margin:1em 0}.timeline span{flex:1;height:1.6em;text-align:center;font-size:11px;line-height:1.6em}
.good{background:#d4f4d4}.culprit{outline:3px solid #c00}
`;

/** A page of khil's look: a title, the verdict first, then the body (no script). */
export function htmlPage(title: string, verdict: { word: string; cls: string }, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>khil: ${esc(title)}: ${esc(verdict.word)}</title>
<style>${STYLE}</style></head><body>
<h1>khil ${esc(title)} <span class="verdict ${verdict.cls}" id="verdict">${esc(verdict.word)}</span></h1>
${body}
</body></html>
`;
}

/**
 * The plots' code: each section's plots (latency by quantile, trends over the history) drawn from the data
 * embedded under its own id.
 */
const PLOTS = `
const colors = ["#d6336c", "#1c7ed6", "#2b8a3e", "#e67700", "#7048e8", "#495057"];
for (const id of ["plots", "trends"]) {
  const src = document.getElementById(id + "-data");
  if (!src) continue;
  const host = document.getElementById(id);
  for (const p of JSON.parse(src.textContent)) {
    const div = document.createElement("div");
    div.className = "plot";
    host.appendChild(div);
    const lines = p.series.map((s, i) => ({ label: s.name, stroke: colors[i % colors.length], width: 2, points: { show: true } }));
    const values = p.series.map((s) => s.v);
    if (p.bound !== undefined) {
      lines.push({ label: "bound on the median", stroke: "#c92a2a", dash: [6, 4], width: 2, points: { show: false } });
      values.push(p.xs.map(() => p.bound));
    }
    const opts = {
      title: p.title,
      width: 620, height: 300,
      scales: { x: { time: false }, y: p.log ? { distr: 3 } : {} },
      axes: [p.whole ? { label: p.x, incrs: [1, 2, 5, 10, 20, 50] } : { label: p.x }, { label: p.y }],
      series: [{ label: p.x }, ...lines],
    };
    new uPlot(opts, [p.xs, ...values], div);
  }
}
`;

/** A section of plots with its data beside it, or nothing when it has none. */
function plotSection(id: string, heading: string, plots: Plot[]): string {
  if (!plots.length) return "";
  const data = JSON.stringify(plots).replace(/</g, "\\u003c");
  return `<section><h2>${esc(heading)}</h2><div id="${id}"></div><script type="application/json" id="${id}-data">${data}</script></section>`;
}

export function toHtml(
  r: Results,
  assets: HtmlAssets,
  logHref: (run: ArchRun, t: TestRecord) => string | undefined = () => undefined,
): string {
  const v = verdictOf(r);
  const plots = plotData(r);
  const trends = trendData(r);
  const guests = r.runs
    .filter((run) => run.guest)
    .map((run) => {
      const g = run.guest;
      return `<li>${esc(where(run))}: ${esc(`${g?.kernelRelease} (config ${g?.configHash}), ${g?.accel}, ${g?.cpus} CPUs, clocksource ${g?.clocksource}, boot ${g?.bootSeconds.toFixed(1)} s`)}</li>`;
    });
  const errors = r.runs
    .filter((run) => run.error || run.interrupted)
    .map(
      (run) =>
        `<li class="err">${esc(where(run))}: ${esc(run.interrupted ?? `${run.error?.stage}: ${run.error?.message}`)}</li>`,
    );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>khil: ${esc(v.word)}</title>
<style>${assets.uplotCss}${STYLE}</style></head><body>
<h1>khil <span class="verdict ${v.cls}" id="verdict">${esc(v.word)}</span></h1>
<p>${r.runs.length} run${r.runs.length === 1 ? "" : "s"}, ${esc(r.startedAt)} to ${esc(r.finishedAt)} &middot; ${esc(r.runDir)}</p>
${errors.length ? `<ul>${errors.join("")}</ul>` : ""}
<section id="results"><h2>Results</h2>${grid(r, logHref)}${guests.length ? `<ul>${guests.join("")}</ul>` : ""}</section>
${findingsSection(r)}
${plotSection("plots", "Latency", plots)}
${plotSection("trends", "Trends in this cell", trends)}
${timingSection(r)}
${plots.length || trends.length ? `<script>${assets.uplotJs.replace(/<\/script/gi, "<\\/script")}</script><script>${PLOTS}</script>` : ""}
</body></html>
`;
}
