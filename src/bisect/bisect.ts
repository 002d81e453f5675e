import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa, execaSync } from "execa";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { median } from "../common/median.ts";
import { textTable } from "../common/table.ts";
import { projectRoot } from "../host/paths.ts";
import { createRunDir } from "../host/run-dir.ts";
import { requireTools } from "../host/tools.ts";
import { currentHead, git, isGitTree, subject } from "../kernel/git.ts";
import { readRunDir } from "../report/merge.ts";
import type { SplatRecord } from "../report/results.ts";
import { bisectHtml } from "./html.ts";
import type { StepRecord } from "./judge.ts";
import { regressionReport } from "./regression-report.ts";
import { bisectStep, type StepOptions } from "./step.ts";

export interface BisectOptions extends StepOptions {
  good: string;
  bad: string;
  /** Extra arguments repeated to each `khil bisect-step`. */
  stepArgs: string[];
  /** The command that started the bisect, word by word: how report.txt says to reproduce it. */
  command: string[];
}

export interface BisectReport {
  tree: string;
  arch: string;
  good: string;
  bad: string;
  firstBad?: { commit: string; subject: string };
  steps: StepRecord[];
  parent?: StepRecord;
  stepCount: number;
  skips: number;
  /** Median over the steps of step time / (make + boot + tests). */
  medianStepRatio?: number;
}

/** The steps a bisect recorded so far, one JSON object per line (`KHIL_BISECT_LOG`). */
export function readSteps(file: string | undefined): StepRecord[] {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StepRecord);
}

/** Each step with its verdict and its time next to the raw make, boot and tests it stands for. */
export function stepTable(steps: StepRecord[]): string {
  const s1 = (n: number) => n.toFixed(1);
  return textTable(
    ["commit", "verdict", "step s", "make s", "boot s", "tests s", "ratio", "subject (reason)"],
    steps.map((s) => [
      s.commit.slice(0, 12),
      s.verdict,
      s1(s.seconds),
      s1(s.raw.make),
      s1(s.raw.boot),
      s1(s.raw.tests),
      s.raw.ratio ? s.raw.ratio.toFixed(2) : "-",
      `${s.subject} (${s.reason})`,
    ]),
  ).join("\n");
}

/** The median of the steps' ratios to their raw work: what bisect costs above make, boot and tests. */
export function medianRatio(steps: StepRecord[]): number | undefined {
  const r = steps.map((s) => s.raw.ratio).filter((x) => x > 0);
  return r.length ? Number(median(r).toFixed(2)) : undefined;
}

/** The kernel's reports at the first bad commit, from its step's results.json (none if it cannot be read). */
function culpritSplats(r: BisectReport): SplatRecord[] {
  const step = r.steps.find((s) => s.commit === r.firstBad?.commit);
  const dir = step?.reused?.runDir ?? step?.runDir;
  try {
    return dir ? readRunDir(dir).runs.flatMap((run) => run.splats) : [];
  } catch {
    return [];
  }
}

/**
 * Drives `git bisect run` with `khil bisect-step` after checking both ends. The tree is left as found:
 * `git bisect reset` and the original HEAD, also after Ctrl-C or an error.
 */
export async function bisect(o: BisectOptions): Promise<BisectReport> {
  await requireTools(["git"]);
  if (!(await isGitTree(o.tree)))
    throw new KhilError(`--tree ${o.tree}: not a git repository (bisect needs one)`);
  const dirty = await git(o.tree, ["status", "--porcelain", "--untracked-files=no"]);
  if (dirty)
    throw new KhilError(
      `--tree ${o.tree} has uncommitted changes (${dirty.split("\n").length} files): commit or stash them first; bisect checks out other commits`,
    );
  const inBisect = await execa("git", ["-C", o.tree, "bisect", "log"], { reject: false });
  if (inBisect.exitCode === 0)
    throw new KhilError(
      `--tree ${o.tree} is already bisecting: finish it or run 'git bisect reset' there first`,
    );
  const goodSha = await git(o.tree, ["rev-parse", "--verify", `${o.good}^{commit}`]);
  const badSha = await git(o.tree, ["rev-parse", "--verify", `${o.bad}^{commit}`]);
  const original = await currentHead(o.tree);
  const runDir = createRunDir(`bisect-${o.arch.name}`);
  const stepsFile = join(runDir, "steps.jsonl");
  const restore = () => {
    execaSync("git", ["-C", o.tree, "bisect", "reset"], { reject: false });
    execaSync("git", ["-C", o.tree, "checkout", "--quiet", original], { reject: false });
  };
  process.once("exit", restore);
  const report: BisectReport = {
    tree: o.tree,
    arch: o.arch.name,
    good: goodSha,
    bad: badSha,
    steps: [],
    stepCount: 0,
    skips: 0,
  };
  const save = () => {
    report.steps = readSteps(stepsFile);
    report.stepCount = report.steps.length;
    report.skips = report.steps.filter((s) => s.verdict === "skip").length;
    const ratio = medianRatio(report.steps);
    if (ratio !== undefined) report.medianStepRatio = ratio;
    writeFileSync(join(runDir, "bisect.json"), `${JSON.stringify(report, null, 2)}\n`);
  };
  const stepHere = async (rev: string) => {
    await git(o.tree, ["checkout", "--quiet", rev]);
    const s = await bisectStep({ ...o, earlier: readSteps(stepsFile) });
    appendFileSync(stepsFile, `${JSON.stringify(s)}\n`);
    log(`bisect: ${s.commit.slice(0, 12)} ${s.verdict} (${s.reason}) in ${s.seconds.toFixed(0)} s`);
    return s;
  };
  try {
    log(`bisect: checking the good end ${o.good} first`);
    const g = await stepHere(goodSha);
    if (g.verdict !== "good")
      throw new KhilError(
        `the "good" end ${o.good} is ${g.verdict} (${g.reason}): pick a good commit where the tests pass`,
        1,
      );
    log(`bisect: checking the bad end ${o.bad}`);
    const b = await stepHere(badSha);
    if (b.verdict !== "bad")
      throw new KhilError(
        `the "bad" end ${o.bad} is ${b.verdict} (${b.reason}): pick a bad commit where the tests fail`,
        1,
      );
    await git(o.tree, ["bisect", "start", badSha, goodSha]);
    const r = await execa(
      "git",
      [
        "-C",
        o.tree,
        "bisect",
        "run",
        "node",
        join(projectRoot, "bin", "khil.js"),
        "bisect-step",
        ...o.stepArgs,
      ],
      {
        reject: false,
        all: true,
        env: { KHIL_BISECT_LOG: stepsFile },
        stdout: ["pipe", "inherit"],
        stderr: ["pipe", "inherit"],
      },
    );
    writeFileSync(join(runDir, "git-bisect-run.log"), String(r.all ?? ""));
    const m = /^([0-9a-f]{40}) is the first bad commit/m.exec(String(r.all ?? ""));
    if (!m?.[1])
      throw new KhilError(
        `git bisect run did not name a first bad commit (see ${runDir}/git-bisect-run.log)`,
        1,
      );
    const first = m[1];
    report.firstBad = { commit: first, subject: await subject(o.tree, first) };
    save();
    // The failing tests' output next to their passing output from the parent, run if bisect never did.
    const parentSha = await git(o.tree, ["rev-parse", `${first}^`]);
    await git(o.tree, ["bisect", "reset"]);
    report.parent = report.steps.find((s) => s.commit === parentSha) ?? (await stepHere(parentSha));
    save();
    return report;
  } finally {
    save();
    restore();
    process.off("exit", restore);
    report.steps = readSteps(stepsFile);
    process.stdout.write(`${stepTable(report.steps)}\n`);
    if (report.firstBad) {
      const bad = report.steps.find((s) => s.commit === report.firstBad?.commit);
      process.stdout.write(`\nfirst bad commit: ${report.firstBad.commit} ${report.firstBad.subject}\n`);
      for (const t of bad?.tests ?? []) {
        process.stdout.write(
          `\n--- ${t.name} at ${report.firstBad.commit.slice(0, 12)}: ${t.verdict}\n${t.log ?? ""}\n`,
        );
        const before = report.parent?.tests.find((p) => p.name === t.name);
        process.stdout.write(
          `--- ${t.name} at its parent ${report.parent?.commit.slice(0, 12)}: ${before?.verdict ?? "?"}\n`,
        );
      }
    }
    const text =
      report.firstBad &&
      regressionReport({
        report,
        suite: o.suite.name,
        command: o.command,
        splats: culpritSplats(report),
      });
    writeFileSync(join(runDir, "report.html"), bisectHtml(report, runDir));
    if (text) {
      writeFileSync(join(runDir, "report.txt"), text);
      process.stdout.write(`report for the list: ${join(runDir, "report.txt")}\n`);
    }
    process.stdout.write(`bisect: ${join(runDir, "bisect.json")}\n`);
  }
}
