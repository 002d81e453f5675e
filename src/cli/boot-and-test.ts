import type { Command } from "commander";
import { resolveArchs } from "../arch/arch.ts";
import { createRunDir } from "../host/run-dir.ts";
import { allPassed } from "../report/verdict.ts";
import { bootAndTest, runDeadline } from "../run/cell.ts";
import { loadSuite } from "../run/suite.ts";
import { checkTestSelection } from "../selftests/build.ts";
import {
  collect,
  fragmentsOf,
  machineOptions,
  machineSpec,
  runOptions,
  treeOf,
  treeOptions,
} from "./options.ts";

export function registerBootAndTest(program: Command): void {
  runOptions(
    machineOptions(
      treeOptions(
        program
          .command("boot-and-test")
          .description("build, boot, push the suite's selftests, run and report"),
      ),
    ),
  )
    .option("--arch <arch>", "x86_64, arm64, a comma list, or all", "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "run these tests instead of the suite's selection (repeatable)", collect, [])
    .option("--no-deny", "also run the tests the suite's deny list skips")
    .action(async (o) => {
      const archs = resolveArchs(o.arch);
      const suite = loadSuite(o.suite);
      const tree = await treeOf(o);
      if (o.test.length && suite.build) checkTestSelection(tree.path, suite.build.progTests, o.test);
      const runDir = createRunDir(`boot-and-test-${o.arch}`);
      const machine = machineSpec(o);
      machine.runDeadline = runDeadline(machine, [suite]);
      const specs = archs.map((arch) => ({
        arch,
        tree,
        suite,
        fragments: fragmentsOf(o),
        tests: o.test.length ? o.test : undefined,
        deny: o.deny,
        machine,
        runDir,
      }));
      const results = await bootAndTest(specs, runDir);
      process.exitCode = allPassed(results) ? 0 : 1;
    });
}
