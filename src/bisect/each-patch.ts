/**
 * `--each-patch`, ktest.pl's PATCHCHECK: the series' commits one after the other, each built (and booted and
 * tested) as a bisect step judges a commit, in a clone of the series kept for it, so that every step after
 * the first is an incremental build of the same build directory.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { textTable } from "../common/table.ts";
import { withLock } from "../host/lock.ts";
import { createRunDir } from "../host/run-dir.ts";
import { git } from "../kernel/git.ts";
import { seriesWorkTree } from "../kernel/series.ts";
import type { KernelTree } from "../kernel/tree.ts";
import { runFault } from "../report/fault.ts";
import { readRunDir } from "../report/merge.ts";
import { type ArchRun, testName } from "../report/results.ts";
import { eachPatchHtml } from "./html.ts";
import type { StepRecord } from "./judge.ts";
import { regressionReport } from "./regression-report.ts";
import { bisectStep, type StepOptions } from "./step.ts";

export interface PatchStep {
  index: number;
  subject: string;
  step: StepRecord;
  run?: ArchRun;
}

export interface EachPatchReport {
  arch: string;
  series: string;
  base: string;
  patches: PatchStep[];
  /** The first patch whose step is bad: the one that broke something. */
  firstBad?: { index: number; subject: string; commit: string; reason: string };
}

/** What a stage of the step's run came to: ok, the failing stage, or not reached. */
function stageMark(run: ArchRun | undefined, stage: "build" | "boot"): string {
  if (!run) return "?";
  if (run.error?.stage === stage) return "FAIL";
  if (stage === "build") return run.error?.stage === "config" ? "FAIL" : "ok";
  return run.guest ? "ok" : "-";
}

/**
 * The table patch × (build, boot, the tests whose verdict changed along the series) with the step's
 * verdict, as the report prints it: a test with the same verdict after every patch is summed up below it,
 * so that the default suite's 24 results do not make the table several screens wide.
 */
export function patchTable(r: EachPatchReport): string {
  const all = [...new Set(r.patches.flatMap((p) => p.run?.tests.map(testName) ?? []))];
  const mark = (p: PatchStep, t: string) => {
    const rec = p.run?.tests.find((x) => testName(x) === t);
    return rec ? rec.verdict.toUpperCase() : "-";
  };
  const tests = all.filter((t) => new Set(r.patches.map((p) => mark(p, t))).size > 1);
  const steady = all.filter((t) => !tests.includes(t));
  const head = ["patch", "commit", "build", "boot", ...tests, "verdict", "fault"];
  const rows = r.patches.map((p) => [
    `${p.index}/${r.patches.length}`,
    p.step.commit.slice(0, 12),
    stageMark(p.run, "build"),
    stageMark(p.run, "boot"),
    ...tests.map((t) => mark(p, t)),
    p.step.verdict,
    (p.run && runFault(p.run)) ?? "-",
  ]);
  const out = textTable(head, rows);
  const first = r.patches[0];
  if (steady.length && first) {
    const by = new Map<string, string[]>();
    for (const t of steady) by.set(mark(first, t), [...(by.get(mark(first, t)) ?? []), t]);
    out.push(
      `the same after every patch: ${[...by].map(([v, ts]) => `${ts.length} ${v} (${ts.join(", ")})`).join("; ")}`,
    );
  }
  out.push(
    r.firstBad
      ? `first bad: patch ${r.firstBad.index}/${r.patches.length} ${r.firstBad.subject} (${r.firstBad.reason})`
      : "no patch broke anything",
  );
  return out.join("\n");
}

export async function eachPatch(
  tree: KernelTree,
  o: Omit<StepOptions, "tree"> & { command: string[] },
): Promise<{ report: EachPatchReport; runDir: string }> {
  const series = tree.series;
  if (!series) throw new KhilError("--each-patch needs --series");
  const work = await seriesWorkTree(tree, "each");
  const runDir = createRunDir(`each-patch-${o.arch.name}`);
  const report: EachPatchReport = {
    arch: o.arch.name,
    series: series.source,
    base: `${series.base} @ ${series.baseCommit.slice(0, 12)}`,
    patches: [],
  };
  await withLock(work, "checking each patch", async () => {
    for (const [i, p] of series.patches.entries()) {
      const index = i + 1;
      log(`--each-patch: ${o.arch.name}: patch ${index}/${series.patches.length} ${p.subject}`);
      await git(work, ["checkout", "-q", "--detach", p.commit]);
      const step = await bisectStep({ ...o, tree: work, earlier: report.patches.map((x) => x.step) });
      const run = readRunDir(step.reused?.runDir ?? step.runDir).runs[0];
      report.patches.push({ index, subject: p.subject, step, ...(run ? { run } : {}) });
      if (step.verdict === "bad" && !report.firstBad)
        report.firstBad = { index, subject: p.subject, commit: p.commit, reason: step.reason };
      writeFileSync(join(runDir, "each-patch.json"), `${JSON.stringify(report, null, 2)}\n`);
    }
  });
  const bad = report.firstBad;
  const text =
    bad &&
    regressionReport({
      // The patches as the steps that found the first bad one: its parent is the patch before (none for the first).
      report: {
        tree: work,
        arch: o.arch.name,
        good: series.baseCommit,
        bad: series.patches.at(-1)?.commit ?? bad.commit,
        firstBad: { commit: bad.commit, subject: bad.subject },
        steps: report.patches.map((p) => p.step),
        ...(bad.index > 1 ? { parent: report.patches[bad.index - 2]?.step } : {}),
        stepCount: report.patches.length,
        skips: report.patches.filter((p) => p.step.verdict === "skip").length,
      },
      suite: o.suite.name,
      command: o.command,
      splats: report.patches[bad.index - 1]?.run?.splats ?? [],
      patch: {
        index: bad.index,
        total: series.patches.length,
        ...(series.patches[bad.index - 1]?.messageId
          ? { messageId: series.patches[bad.index - 1]?.messageId }
          : {}),
      },
    });
  if (text) writeFileSync(join(runDir, "report.txt"), text);
  writeFileSync(join(runDir, "report.html"), eachPatchHtml(report, runDir));
  return { report, runDir };
}
