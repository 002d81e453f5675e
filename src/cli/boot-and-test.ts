import { join } from "node:path";
import { type Command, Option } from "commander";
import { archNames, resolveArchs } from "../arch/arch.ts";
import { eachPatch, patchTable } from "../bisect/each-patch.ts";
import { BISECT_TYPES } from "../bisect/judge.ts";
import { KhilError } from "../common/errors.ts";
import { createRunDir } from "../host/run-dir.ts";
import { allPassed } from "../report/verdict.ts";
import { bootAndTest, runDeadline } from "../run/cell.ts";
import { splitCliTests } from "../run/selection.ts";
import { checkShardable } from "../run/shards.ts";
import { loadSuite, withFlavour } from "../run/suite.ts";
import { checkTestSelection } from "../selftests/build.ts";
import { DEFAULT_FLAVOUR, FLAVOURS, treeFlavours, unknownFlavour } from "../selftests/tree-lists.ts";
import { engineOf, engineOptions } from "./engine.ts";
import {
  collect,
  fragmentsOf,
  historyOf,
  hostPushes,
  machineOptions,
  machineSpec,
  positiveInt,
  pushOption,
  runOptions,
  treeOf,
  treeOptions,
} from "./options.ts";

export function registerBootAndTest(program: Command): void {
  pushOption(
    engineOptions(
      runOptions(
        machineOptions(
          treeOptions(
            program
              .command("boot-and-test")
              .description("build, boot, push the suite's selftests, run and report"),
          ),
        ),
      ),
    ),
  )
    .option("--arch <arch>", `${archNames().join(", ")}, a comma list, or all`, "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "run these tests instead of the suite's selection (repeatable)", collect, [])
    .option(
      "--no-deny",
      "also run the tests the suite's deny list (and the tree's, with fromTree.deny) skips",
    )
    .option(
      "--flavour <name>",
      `the test_progs flavour to build and run: ${FLAVOURS.join(", ")} (an error where the tree does not build it; a matrix cell skips)`,
      DEFAULT_FLAVOUR,
    )
    .option(
      "--repeat <n>",
      "run the same kernel N times, each in a fresh guest and recorded; the summary gives each test's pass rate",
      positiveInt,
      1,
    )
    .option(
      "--shards <n>",
      "split the tests over N guests booted at once, each in a directory of its own; one merged report",
      positiveInt,
      1,
    )
    .option(
      "--no-snapshot",
      "with --repeat: boot every repetition cold instead of restoring the first one's ready guest",
    )
    .addOption(
      new Option(
        "--each-patch [type]",
        "with --series: build (and boot, and test) after every patch, as ktest.pl's PATCHCHECK",
      ).choices([...BISECT_TYPES]),
    )
    .action(async (o) => {
      const archs = resolveArchs(o.arch);
      const bad = unknownFlavour(o.flavour);
      if (bad) throw new KhilError(bad, 2);
      const flavour = o.flavour === DEFAULT_FLAVOUR ? undefined : (o.flavour as string);
      const suite = withFlavour(loadSuite(o.suite), flavour);
      const engine = engineOf(o);
      const extra = hostPushes(o);
      if (o.eachPatch && o.engine !== "local")
        throw new KhilError("--each-patch runs on this machine only: leave out --engine lava", 2);
      if (o.shards > 1 && (o.eachPatch || o.engine !== "local"))
        throw new KhilError(
          "--shards splits a run over this machine's guests: leave out --each-patch and --engine lava",
          2,
        );
      // A suite that cannot be split is refused now, not after its build.
      if (o.shards > 1) checkShardable(suite);
      if (o.eachPatch && !o.series)
        throw new KhilError("--each-patch needs --series PATH: the patches to check");
      const tree = await treeOf(o);
      // Asked for by name on one tree, a flavour it does not build is an error; a matrix cell skips instead.
      if (flavour && !treeFlavours(tree.path).includes(flavour))
        throw new KhilError(
          `--flavour ${flavour}: ${tree.label}'s selftests Makefile does not build test_progs-${flavour} (it builds: ${treeFlavours(tree.path).join(", ")})`,
        );
      // Checked up front against the prog_tests a BPF-only suite builds; kselftest's are listed in the guest.
      const progTests = suite.build?.progTests;
      const forSuite = splitCliTests(suite.commands, o.test).suite;
      if (forSuite.length && suite.commands.every((c) => c.tests))
        throw new KhilError(
          `--test ${forSuite.join(", ")} matches no test of suite ${suite.name}: valid are ${suite.commands.flatMap((c) => c.tests ?? []).join(", ")} (and their subtests, as ${suite.commands.find((c) => c.tests)?.tests?.[0]}/NAME)`,
        );
      if (forSuite.length && progTests && !suite.build?.kselftest)
        checkTestSelection(tree.path, progTests, forSuite);
      if (o.eachPatch) {
        let clean = true;
        for (const arch of archs) {
          const { report, runDir } = await eachPatch(tree, {
            arch,
            suite,
            tests: o.test.length ? o.test : undefined,
            fragments: fragmentsOf(o),
            type: o.eachPatch === true ? "test" : o.eachPatch,
            machine: { ...machineSpec(o), history: historyOf(o, "each-patch") },
            command: ["npx", "khil", ...process.argv.slice(2)],
          });
          process.stdout.write(`${arch.name}: ${report.series} onto ${report.base}\n${patchTable(report)}\n`);
          process.stdout.write(
            `results: ${runDir} (each-patch.json names the run directory of each patch${report.firstBad ? "; report.txt reports the first bad one for the list" : ""})\n`,
          );
          clean &&= report.patches.every((p) => p.step.verdict === "good");
        }
        process.exitCode = clean ? 0 : 1;
        return;
      }
      const runDir = createRunDir(`boot-and-test-${o.arch}`);
      const machine = { ...machineSpec(o), history: historyOf(o, "boot-and-test") };
      const repeat: number = o.repeat;
      // Each repetition is a run of its own, in a directory of its own; the whole-run deadline is each one's
      // times their number.
      machine.runDeadline = runDeadline(machine, [suite], repeat);
      const specs = Array.from({ length: repeat }, (_, i) =>
        archs.map((arch) => ({
          arch,
          tree,
          suite,
          fragments: fragmentsOf(o),
          tests: o.test.length ? o.test : undefined,
          deny: o.deny,
          ...(flavour ? { flavour } : {}),
          machine,
          runDir: repeat > 1 ? join(runDir, `repeat-${String(i + 1).padStart(2, "0")}`) : runDir,
          extra,
          ...(o.shards > 1 ? { shards: o.shards as number } : {}),
          // The first repetition boots (its boot is under test) and saves its ready guest; the others
          // restore it, each a fresh copy, so that one repetition's damage cannot reach the next. A run
          // with --retries saves one too: each retry runs in a fresh copy (rerun.ts).
          // Shards share no snapshot: each would save the same one at once.
          ...((repeat > 1 || machine.retries > 0) && o.snapshot && o.shards === 1
            ? { snapshot: i === 0 ? ("save" as const) : ("restore" as const) }
            : {}),
        })),
      ).flat();
      const results = await bootAndTest(specs, runDir, engine.test);
      process.exitCode = allPassed(results) ? 0 : 1;
    });
}
