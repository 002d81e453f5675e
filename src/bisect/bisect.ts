import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa, execaSync } from "execa";
import type { Arch } from "../arch/arch.ts";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { projectRoot } from "../host/paths.ts";
import { createRunDir } from "../host/run-dir.ts";
import { currentHead, git, isGitTree, subject } from "../kernel/git.ts";
import type { ArchRun } from "../report/results.ts";
import {
  type CellSpec,
  type MachineSpec,
  newResults,
  newRun,
  prepareCell,
  runDeadline,
  testCell,
  writeReports,
} from "../run/cell.ts";
import type { Suite } from "../run/suite.ts";

export type StepVerdict = "good" | "bad" | "skip";

export interface StepRecord {
  commit: string;
  subject: string;
  verdict: StepVerdict;
  reason: string;
  seconds: number;
  runDir: string;
  /** Failing tests with their log excerpts (bad), or the passing tests (good). */
  tests: { name: string; verdict: string; log?: string }[];
}

/** `git bisect run` exit codes: 0 good, 1 bad, 125 skip (this commit cannot be judged). */
export const EXIT: Record<StepVerdict, number> = { good: 0, bad: 1, skip: 125 };

/**
 * Judges a run: tests failing (or a kernel splat while they ran) make a commit bad; a commit that does not
 * build, boot or have the selected tests is skipped, with the reason, since it says nothing of the tests.
 */
export function judge(run: ArchRun): { verdict: StepVerdict; reason: string } {
  if (run.error) {
    if (run.error.stage === "run" && !/matches no test/.test(run.error.message))
      return { verdict: "bad", reason: `run: ${run.error.message.split("\n")[0]}` };
    return { verdict: "skip", reason: `${run.error.stage}: ${run.error.message.split("\n")[0]}` };
  }
  if (run.status === "passed") return { verdict: "good", reason: "selected tests passed" };
  if (run.status === "skipped")
    return { verdict: "skip", reason: "the suite denies every selected test here" };
  const failed = run.tests
    .filter((t) => t.verdict === "fail")
    .map((t) => (t.subtest ? `${t.test}/${t.subtest}` : t.test));
  const why = [
    failed.length ? `failed: ${failed.join(", ")}` : "",
    ...run.splats.map((s) => `kernel ${s.kind}: ${s.title}`),
    ...run.problems,
  ].filter(Boolean);
  return { verdict: "bad", reason: why.join("; ") };
}

export interface StepOptions {
  tree: string;
  arch: Arch;
  suite: Suite;
  tests?: string[];
  machine: MachineSpec;
}

/** One bisect step on whatever the tree has checked out: build, selftests, boot, run, judge. */
export async function bisectStep(o: StepOptions): Promise<StepRecord> {
  const started = Date.now();
  const commit = await git(o.tree, ["rev-parse", "HEAD"]);
  const subj = await subject(o.tree, "HEAD");
  const runDir = createRunDir(`bisect-step-${o.arch.name}-${commit.slice(0, 12)}`);
  const spec: CellSpec = {
    machine: { ...o.machine, runDeadline: runDeadline(o.machine, [o.suite]) },
    arch: o.arch,
    tree: { path: o.tree, label: `${o.tree} @ ${commit.slice(0, 12)}` },
    suite: o.suite,
    fragments: [],
    tests: o.tests,
    deny: true,
    runDir,
  };
  const results = newResults(runDir);
  const run = newRun(spec);
  results.runs.push(run);
  try {
    const prepared = await prepareCell(spec, run);
    if (prepared) await testCell(spec, run, prepared);
  } finally {
    writeReports(results);
  }
  const { verdict, reason } = judge(run);
  const tests = run.tests
    .filter((t) => (verdict === "bad" ? t.verdict === "fail" : true))
    .map((t) => {
      const rec: StepRecord["tests"][number] = {
        name: t.subtest ? `${t.test}/${t.subtest}` : t.test,
        verdict: t.verdict,
      };
      if (t.log) rec.log = t.log;
      return rec;
    });
  return { commit, subject: subj, verdict, reason, seconds: (Date.now() - started) / 1000, runDir, tests };
}

export interface BisectOptions extends StepOptions {
  good: string;
  bad: string;
  /** Extra arguments repeated to each `khil bisect-step`. */
  stepArgs: string[];
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
}

function readSteps(file: string): StepRecord[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StepRecord);
}

export function stepTable(steps: StepRecord[]): string {
  return steps
    .map(
      (s) =>
        `${s.commit.slice(0, 12)}  ${s.verdict.padEnd(4)}  ${s.seconds.toFixed(0).padStart(4)} s  ${s.subject}  (${s.reason})`,
    )
    .join("\n");
}

/**
 * Drives `git bisect run` with `khil bisect-step` after checking both ends. The tree is left as found:
 * `git bisect reset` and the original HEAD, also after Ctrl-C or an error.
 */
export async function bisect(o: BisectOptions): Promise<BisectReport> {
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
    writeFileSync(join(runDir, "bisect.json"), `${JSON.stringify(report, null, 2)}\n`);
  };
  const stepHere = async (rev: string) => {
    await git(o.tree, ["checkout", "--quiet", rev]);
    const s = await bisectStep(o);
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
    process.stdout.write(`bisect: ${join(runDir, "bisect.json")}\n`);
  }
}
