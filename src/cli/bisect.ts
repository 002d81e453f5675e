import { appendFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, Option } from "commander";
import { bisect } from "../bisect/bisect.ts";
import { BISECT_TYPES, type BisectType, EXIT } from "../bisect/judge.ts";
import { bisectStep, type StepOptions } from "../bisect/step.ts";
import { checkUserTree } from "../kernel/tree.ts";
import { loadSuite } from "../run/suite.ts";
import {
  collect,
  configOptions,
  fragmentsOf,
  jobsOption,
  machineOptions,
  machineSpec,
  type Opts,
  oneArch,
  runOptions,
} from "./options.ts";

function stepOptions(cmd: Command): Command {
  return configOptions(runOptions(machineOptions(cmd)))
    .requiredOption("--tree <path>", "the git kernel tree to bisect")
    .option("--arch <arch>", "x86_64 or arm64", "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "judge only these tests (repeatable)", collect, [])
    .addOption(
      new Option("--type <type>", "what a good commit does: builds, boots to SSH, or passes the tests")
        .choices([...BISECT_TYPES])
        .default("test"),
    )
    .addOption(jobsOption());
}

/** A suite given as a path is made absolute: `git bisect run` runs each step at the tree's top. */
function suiteArg(o: Opts): string {
  const s = String(o.suite);
  return s.endsWith(".yaml") || s.includes("/") ? resolve(s) : s;
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
    machine: machineSpec(o),
  };
}

export function registerBisect(program: Command): void {
  stepOptions(
    program
      .command("bisect-step")
      .description("build, boot and test the checked-out commit for git bisect run"),
  ).action(async (o) => {
    try {
      const s = await bisectStep(stepArgs(o));
      if (process.env.KHIL_BISECT_LOG) appendFileSync(process.env.KHIL_BISECT_LOG, `${JSON.stringify(s)}\n`);
      process.stderr.write(`khil: bisect-step: ${s.commit.slice(0, 12)} ${s.verdict}: ${s.reason}\n`);
      process.exitCode = EXIT[s.verdict];
    } catch (e) {
      // Anything khil itself cannot do here says nothing about the commit: skip it rather than stop bisect.
      process.stderr.write(`khil: bisect-step: skip: ${(e as Error).message}\n`);
      process.exitCode = EXIT.skip;
    }
  });

  stepOptions(program.command("bisect").description("find the commit that broke the selected tests"))
    .requiredOption("--good <ref>", "a commit where the tests pass")
    .requiredOption("--bad <ref>", "a commit where they fail")
    .action(async (o) => {
      const step = stepArgs(o);
      const pass = [
        "--tree",
        step.tree,
        "--arch",
        step.arch.name,
        "--suite",
        suiteArg(o),
        "--type",
        step.type,
      ];
      for (const t of o.test as string[]) pass.push("--test", t);
      for (const f of o.config as string[]) pass.push("--config", resolve(f));
      if (o.debug) pass.push("--debug");
      const flags = ["cpus", "memory", "accel", "jobs", "append", "retries"] as const;
      const timeouts = ["buildTimeout", "bootTimeout", "pushTimeout", "timeout"] as const;
      for (const k of [...flags, ...timeouts])
        for (const v of [o[k]].flat())
          if (v !== undefined) pass.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v));
      const r = await bisect({ ...step, good: o.good, bad: o.bad, stepArgs: pass });
      process.exitCode = r.firstBad ? 0 : 1;
    });
}
