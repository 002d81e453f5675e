/**
 * report.html for a bisect and for `--each-patch`: the answer first (the culprit, or none), then the steps
 * as a timeline (good, bad, skip; the culprit outlined) and as a table, each step linking to its own run's
 * report.html.
 */
import { relative } from "node:path";
import { esc, htmlPage } from "../report/html.ts";
import type { BisectReport } from "./bisect.ts";
import type { EachPatchReport } from "./each-patch.ts";
import type { StepRecord } from "./judge.ts";

const CLASS: Record<string, string> = { good: "good", bad: "bad", skip: "skip" };

function steps(
  list: readonly { label: string; step: StepRecord }[],
  culprit: string | undefined,
  from: string,
): string {
  const timeline = list
    .map(
      ({ label, step }) =>
        `<span class="${CLASS[step.verdict] ?? ""}${step.commit === culprit ? " culprit" : ""}" title="${esc(`${step.commit.slice(0, 12)} ${step.subject}: ${step.verdict} (${step.reason})`)}">${esc(label)}</span>`,
    )
    .join("");
  const rows = list
    .map(({ label, step }) => {
      const dir = step.reused?.runDir ?? step.runDir;
      const href = `${relative(from, dir)}/report.html`.split("/").map(encodeURIComponent).join("/");
      const link = `<a href="${esc(href)}">${esc(step.commit.slice(0, 12))}</a>`;
      return `<tr class="${step.commit === culprit ? "culprit" : ""}"><td>${esc(label)}</td><td>${link}</td><td class="${CLASS[step.verdict] ?? ""}">${esc(step.verdict)}</td><td>${step.seconds.toFixed(0)} s</td><td>${esc(step.subject)}</td><td>${esc(step.reason)}</td></tr>`;
    })
    .join("");
  return `<div class="timeline" id="timeline">${timeline}</div><table class="steps" id="steps"><thead><tr><th></th><th>commit</th><th>verdict</th><th>time</th><th>subject</th><th>reason</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function bisectHtml(r: BisectReport, runDir: string): string {
  const culprit = r.firstBad?.commit;
  const head = r.firstBad
    ? `<p>first bad commit: <code>${esc(r.firstBad.commit)}</code> ${esc(r.firstBad.subject)} &middot; <a href="report.txt">report.txt</a> for the list</p>`
    : "<p>no first bad commit named</p>";
  const body = `${head}<p>${esc(r.arch)}, ${esc(r.tree)}: good ${esc(r.good.slice(0, 12))}, bad ${esc(r.bad.slice(0, 12))}, ${r.stepCount} steps, ${r.skips} skipped</p>${steps(
    r.steps.map((s, i) => ({ label: String(i + 1), step: s })),
    culprit,
    runDir,
  )}`;
  return htmlPage(
    "bisect",
    r.firstBad ? { word: "FOUND", cls: "bad" } : { word: "NOT FOUND", cls: "err" },
    body,
  );
}

export function eachPatchHtml(r: EachPatchReport, runDir: string): string {
  const bad = r.firstBad;
  const head = bad
    ? `<p>first bad: patch ${bad.index}/${r.patches.length} ${esc(bad.subject)} (${esc(bad.reason)}) &middot; <a href="report.txt">report.txt</a> for the list</p>`
    : "<p>no patch broke anything</p>";
  const body = `${head}<p>${esc(r.arch)}: ${esc(r.series)} onto ${esc(r.base)}</p>${steps(
    r.patches.map((p) => ({ label: `${p.index}/${r.patches.length}`, step: p.step })),
    bad?.commit,
    runDir,
  )}`;
  return htmlPage("each patch", bad ? { word: "BROKEN", cls: "bad" } : { word: "CLEAN", cls: "ok" }, body);
}
