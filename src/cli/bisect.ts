import { appendFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { archNames } from "../arch/arch.ts";
import { bisect, readSteps } from "../bisect/bisect.ts";
import { BISECT_TYPES, type BisectType, EXIT } from "../bisect/judge.ts";
import { bisectStep, type StepOptions } from "../bisect/step.ts";
import { KhilError } from "../common/errors.ts";
import { withLock } from "../host/lock.ts";
import { git } from "../kernel/git.ts";
import { seriesWorkTree } from "../kernel/series.ts";
import { checkUserTree, PACKAGED_KERNELS } from "../kernel/tree.ts";
import { loadSuite } from "../run/suite.ts";
import {
  collect,
  configOptions,
  fragmentsOf,
  historyOf,
  jobsOption,
  machineOptions,
  machineSpec,
  type Opts,
  oneArch,
  positiveInt,
  runOptions,
  treeOf,
} from "./options.ts";

function stepOptions(cmd: Command): Command {
  return configOptions(runOptions(machineOptions(cmd)))
    .option("--arch <arch>", `one of ${archNames().join(", ")}`, "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "judge only these tests (repeatable)", collect, [])
    .addOption(
      new Option("--type <type>", "what a good commit does: builds, boots to SSH, or passes the tests")
        .choices([...BISECT_TYPES])
        .default("test"),
    )
    .addOption(jobsOption())
    .option(
      "--repeat <n>",
      "run each commit's kernel up to N times, each in a fresh guest, before calling it good",
      positiveInt,
      1,
    );
}

/** A suite given as a path is made absolute: `git bisect run` runs each step at the tree's top. */
function suiteArg(o: Opts): string {
  const s = String(o.suite);
  return s.endsWith(".yaml") || s.includes("/") ? resolve(s) : s;
}

/**
 * Bisecting a series: its patches applied (cached), then a clone kept for bisecting them, so that the
 * applied series stays as it is; good is the base and bad the last patch unless the user says otherwise.
 */
async function seriesBisectTree(
  o: Opts,
): Promise<{ work: string; checkout: () => Promise<{ tree: string; good: string; bad: string }> }> {
  const tree = await treeOf(o);
  const series = tree.series;
  if (!series) throw new KhilError("--series: nothing was applied");
  const work = await seriesWorkTree(tree, "bisect");
  const tip = series.patches.at(-1)?.commit ?? series.baseCommit;
  const checkout = async () => {
    await git(work, ["checkout", "-q", "--detach", tip]);
    return {
      tree: work,
      good: (o.good as string | undefined) ?? series.baseCommit,
      bad: (o.bad as string | undefined) ?? tip,
    };
  };
  return { work, checkout };
}

function stepArgs(o: Opts): StepOptions {
  const tests = o.test as string[];
  return {
    tree: checkUserTree(String(o.tree)),
    arch: oneArch(String(o.arch), "bisect"),
    suite: loadSuite(suiteArg(o)),
    tests: tests.length ? tests : undefined,
    fragments: fragmentsOf(o),
    type: o.type as BisectType,
    repeat: o.repeat as number,
    machine: { ...machineSpec(o), history: historyOf(o, "bisect-step") },
  };
}

export function registerBisect(program: Command): void {
  stepOptions(
    program
      .command("bisect-step")
      .description("build, boot and test the checked-out commit for git bisect run"),
  )
    .requiredOption("--tree <path>", "the git kernel tree to bisect")
    .action(async (o) => {
      try {
        const s = await bisectStep({ ...stepArgs(o), earlier: readSteps(process.env.KHIL_BISECT_LOG) });
        if (process.env.KHIL_BISECT_LOG)
          appendFileSync(process.env.KHIL_BISECT_LOG, `${JSON.stringify(s)}\n`);
        process.stderr.write(`khil: bisect-step: ${s.commit.slice(0, 12)} ${s.verdict}: ${s.reason}\n`);
        process.exitCode = EXIT[s.verdict];
      } catch (e) {
        // Anything khil itself cannot do here says nothing about the commit: skip it rather than stop bisect.
        process.stderr.write(`khil: bisect-step: skip: ${(e as Error).message}\n`);
        process.exitCode = EXIT.skip;
      }
    });

  stepOptions(program.command("bisect").description("find the commit that broke the selected tests"))
    .option("--tree <path>", "the git kernel tree to bisect (with --series: the base it is applied onto)")
    .option("--good <ref>", "a commit where the tests pass (with --series: default the base)")
    .option("--bad <ref>", "a commit where they fail (with --series: default the series' last patch)")
    .option(
      "--series <mbox|dir|A..B>",
      "bisect the patches of a series applied onto --tree or a packaged tree",
    )
    .addOption(
      new Option("--kernel <version>", "with --series: the packaged tree it is applied onto").choices([
        ...PACKAGED_KERNELS,
      ]),
    )
    .action(async (o) => {
      if (!o.series) return bisectAction(o);
      // The series' work tree is checked out commit by commit: a second bisect of it waits for the first.
      const { work, checkout } = await seriesBisectTree(o);
      await withLock(work, "bisecting this series", async () =>
        bisectAction({ ...o, ...(await checkout()) }),
      );
    });
}

async function bisectAction(o: Opts): Promise<void> {
  for (const flag of ["tree", "good", "bad"])
    if (!o[flag]) throw new KhilError(`--${flag} is required (or give --series)`);
  // The steps record their runs; the bisect itself only starts them.
  const step = stepArgs({ ...o, history: "none" });
  const pass = ["--tree", step.tree, "--arch", step.arch.name, "--suite", suiteArg(o), "--type", step.type];
  for (const t of o.test as string[]) pass.push("--test", t);
  for (const f of o.config as string[]) pass.push("--config", resolve(f));
  if (o.debug) pass.push("--debug");
  const flags = ["cpus", "memory", "accel", "jobs", "append", "retries", "repeat"] as const;
  // The steps run from the tree's top: a database given by a relative path is made absolute.
  if (o.history) pass.push("--history", o.history === "none" ? "none" : resolve(String(o.history)));
  const timeouts = ["buildTimeout", "bootTimeout", "pushTimeout", "timeout"] as const;
  for (const k of [...flags, ...timeouts])
    for (const v of [o[k]].flat())
      if (v !== undefined) pass.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v));
  const r = await bisect({
    ...step,
    good: String(o.good),
    bad: String(o.bad),
    stepArgs: pass,
    command: ["npx", "khil", ...process.argv.slice(2)],
  });
  process.exitCode = r.firstBad ? 0 : 1;
}
