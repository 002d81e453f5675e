import type { Arch } from "../arch/arch.ts";
import { createRunDir } from "../host/run-dir.ts";
import { git, subject } from "../kernel/git.ts";
import { testName } from "../report/results.ts";
import { newResults, writeReports } from "../report/write.ts";
import { type CellSpec, type MachineSpec, newRun, prepareCell, runDeadline, testCell } from "../run/cell.ts";
import type { Suite } from "../run/suite.ts";
import { type BisectType, judge, type StepRecord } from "./judge.ts";

export interface StepOptions {
  tree: string;
  arch: Arch;
  suite: Suite;
  tests?: string[];
  /** Kconfig fragments of the user's (`--config`, `--debug`), on top of the suite's. */
  fragments: string[];
  type: BisectType;
  machine: MachineSpec;
}

/** A boot or build step needs no selftests and runs no command. */
function suiteFor(suite: Suite, type: BisectType): Suite {
  return type === "test" ? suite : { ...suite, build: undefined, push: [], commands: [] };
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
    suite: suiteFor(o.suite, o.type),
    fragments: o.fragments,
    tests: o.tests,
    deny: true,
    runDir,
  };
  const results = newResults(runDir);
  const run = newRun(spec);
  results.runs.push(run);
  let makeSeconds: number | undefined;
  try {
    const prepared = await prepareCell(spec, run);
    makeSeconds = prepared?.build.makeSeconds;
    if (prepared && o.type !== "build") await testCell(spec, run, prepared);
  } finally {
    writeReports(results);
  }
  const { verdict, reason } = judge(run, o.type);
  const tests = run.tests
    .filter((t) => (verdict === "bad" ? t.verdict === "fail" : true))
    .map((t) => {
      const rec: StepRecord["tests"][number] = {
        name: testName(t),
        verdict: t.verdict,
      };
      if (t.log) rec.log = t.log;
      return rec;
    });
  const timings = makeSeconds === undefined ? run.timings : { ...run.timings, make: makeSeconds };
  return {
    commit,
    subject: subj,
    verdict,
    reason,
    seconds: (Date.now() - started) / 1000,
    runDir,
    tests,
    timings,
  };
}
