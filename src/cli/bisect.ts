import { appendFileSync } from "node:fs";
import type { Command } from "commander";
import { bisect } from "../bisect/bisect.ts";
import { EXIT } from "../bisect/judge.ts";
import { bisectStep, type StepOptions } from "../bisect/step.ts";
import { checkUserTree } from "../kernel/tree.ts";
import { loadSuite } from "../run/suite.ts";
import {
  collect,
  jobsOption,
  machineOptions,
  machineSpec,
  type Opts,
  oneArch,
  runOptions,
} from "./options.ts";

function stepOptions(cmd: Command): Command {
  return runOptions(machineOptions(cmd))
    .requiredOption("--tree <path>", "the git kernel tree to bisect")
    .option("--arch <arch>", "x86_64 or arm64", "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "judge only these tests (repeatable)", collect, [])
    .addOption(jobsOption());
}

function stepArgs(o: Opts): StepOptions {
  const tests = o.test as string[];
  return {
    tree: checkUserTree(String(o.tree)),
    arch: oneArch(String(o.arch), "bisect"),
    suite: loadSuite(String(o.suite)),
    tests: tests.length ? tests : undefined,
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
      const pass: string[] = ["--tree", step.tree, "--arch", step.arch.name, "--suite", String(o.suite)];
      for (const t of o.test as string[]) pass.push("--test", t);
      const flags = ["cpus", "memory", "accel", "jobs", "append", "retries"] as const;
      const timeouts = ["buildTimeout", "bootTimeout", "pushTimeout", "timeout"] as const;
      for (const k of [...flags, ...timeouts])
        for (const v of [o[k]].flat())
          if (v !== undefined) pass.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v));
      const r = await bisect({ ...step, good: o.good, bad: o.bad, stepArgs: pass });
      process.exitCode = r.firstBad ? 0 : 1;
    });
}
