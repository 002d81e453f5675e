import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { join } from "node:path";
import type { Arch } from "../arch/arch.ts";
import { log } from "../common/log.ts";
import { createRunDir } from "../host/run-dir.ts";
import { git, subject } from "../kernel/git.ts";
import { type ArchRun, testName } from "../report/results.ts";
import { newResults, writeReports } from "../report/write.ts";
import {
  type CellSpec,
  type MachineSpec,
  newRun,
  type Prepared,
  prepareCell,
  remember,
  runDeadline,
  testCell,
} from "../run/cell.ts";
import type { Suite } from "../run/suite.ts";
import { type BisectType, judge, rawWork, type StepRecord } from "./judge.ts";

export interface StepOptions {
  tree: string;
  arch: Arch;
  suite: Suite;
  tests?: string[];
  /** Kconfig fragments of the user's (`--config`, `--debug`), on top of the suite's. */
  fragments: string[];
  type: BisectType;
  machine: MachineSpec;
  /** The steps of this bisect (or series) so far: one that judged the same kernel and files lends its verdict. */
  earlier?: StepRecord[];
  /**
   * Runs of the kernel before it is called good (`--repeat`): each in a fresh guest, the first that is not
   * good decides. syzbot runs each bisection revision 10 times: a flaky failure needs several chances.
   */
  repeat?: number;
}

/** A boot or build step needs no selftests and runs no command. */
function suiteFor(suite: Suite, type: BisectType): Suite {
  return type === "test" ? suite : { ...suite, build: undefined, push: [], commands: [] };
}

async function hashFile(h: ReturnType<typeof createHash>, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
}

/**
 * The bytes a verdict rests on: the kernel image and every file the guest gets (kbuild's output is
 * reproducible, see kernelMakeEnv), so a commit that changes neither (documentation, a tool khil does not
 * push, a comment) is judged by the step that already ran them.
 */
async function stepKey(p: Prepared, o: StepOptions): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify([o.type, o.tests ?? null]));
  await hashFile(h, p.build.bootImage);
  for (const push of p.pushes)
    for (const f of push.files) {
      h.update(`\0${push.dest}/${f}\0`);
      await hashFile(h, join(push.dir, f));
    }
  return h.digest("hex").slice(0, 32);
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
    tree: { path: o.tree, label: `${o.tree} @ ${commit.slice(0, 12)}`, name: o.tree, commit },
    suite: suiteFor(o.suite, o.type),
    fragments: o.fragments,
    tests: o.tests,
    deny: true,
    runDir,
  };
  const results = newResults(runDir);
  let run = newRun(spec);
  results.runs.push(run);
  const remembered = new Set<ArchRun>();
  const done = (r: ArchRun) => {
    remember(spec.machine.history, r, runDir);
    remembered.add(r);
  };
  let key: string | undefined;
  let same: StepRecord | undefined;
  try {
    const prepared = await prepareCell(spec, run);
    if (prepared) run.timings.make = prepared.build.makeSeconds;
    if (prepared && o.type !== "build") {
      key = await stepKey(prepared, o);
      same = o.earlier?.find((s) => s.key === key && s.verdict !== "skip");
      if (same)
        log(`bisect-step: same kernel image and test files as ${same.commit.slice(0, 12)}: not booted`);
      else
        for (let i = 1; ; i++) {
          await testCell(i === 1 ? spec : { ...spec, runDir: join(runDir, `repeat-${i}`) }, run, prepared);
          // Judged after the history had its word: a known flake failing as it did before is not bad.
          done(run);
          if (i >= (o.repeat ?? 1) || judge(run, o.type).verdict !== "good") break;
          log(`bisect-step: good in run ${i} of ${o.repeat}: again`);
          run = newRun(spec);
          results.runs.push(run);
        }
    }
  } finally {
    // A kernel the step did not boot (the same as an earlier step's) has no run of its own to remember.
    if (!same && !remembered.has(run)) done(run);
    writeReports(results);
  }
  const seconds = (Date.now() - started) / 1000;
  const record = (r: Omit<StepRecord, "commit" | "subject" | "seconds" | "runDir" | "timings" | "raw">) => ({
    commit,
    subject: subj,
    seconds,
    runDir,
    timings: run.timings,
    raw: rawWork(run.timings, seconds),
    ...(key ? { key } : {}),
    ...r,
  });
  if (same)
    return record({
      verdict: same.verdict,
      reason: `the same kernel image and test files as ${same.commit.slice(0, 12)}: ${same.reason}`,
      tests: same.tests,
      reused: same.reused ?? { commit: same.commit, runDir: same.runDir },
    });
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
  return record({ verdict, reason, tests });
}
