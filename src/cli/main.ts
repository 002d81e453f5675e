import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { resolveArchs } from "../arch/arch.ts";
import { runBench } from "../bench/bench.ts";
import { bisect, bisectStep, EXIT, type StepOptions } from "../bisect/bisect.ts";
import { KhilError } from "../common/errors.ts";
import { bootGuest, buildFor, type GuestRequest } from "../guest/boot.ts";
import type { Accel } from "../guest/qemu.ts";
import { shellQuote } from "../guest/ssh.ts";
import { guestKey } from "../guest/ssh-key.ts";
import { cacheDir, projectRoot, runsDir } from "../host/paths.ts";
import { createRunDir } from "../host/run-dir.ts";
import { checkWritable, diskProblem } from "../host/writable.ts";
import { buildKernel } from "../kernel/kbuild.ts";
import { checkUserTree, PACKAGED_KERNELS, resolveTree } from "../kernel/tree.ts";
import { githubWorkflow } from "../matrix/github.ts";
import { expandMatrix, loadMatrix } from "../matrix/matrix.ts";
import { runMatrix } from "../matrix/runner.ts";
import { mergeResults, readRunDir } from "../report/merge.ts";
import { allPassed, type Results } from "../report/results.ts";
import { githubAnnotations, matrixTable, toMarkdown } from "../report/summary.ts";
import { bootAndTest, type MachineSpec, runDeadline, writeReports } from "../run/cell.ts";
import { DEFAULT_DEADLINES, type Deadlines, resolveDeadlines } from "../run/deadlines.ts";
import { loadSuite } from "../run/suite.ts";
import { checkTestSelection } from "../selftests/build.ts";

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("must be a positive whole number");
  return n;
}

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number, 0 or more");
  return n;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

const DEBUG_FRAGMENT = join(projectRoot, "kernel-config", "debug.config");

const program = new Command("khil")
  .description("build a kernel carrying the BPF timer series, boot it under QEMU, run its selftests over SSH")
  .exitOverride()
  .hook("preAction", (_, action) => {
    // Merging reports and writing CI files touch neither the caches nor the run directories.
    if (["merge", "github"].includes(action.name())) return;
    checkWritable(cacheDir(), "KHIL_CACHE", 3);
    checkWritable(runsDir(), "KHIL_RUNS", 0);
  });

function treeOptions(cmd: Command): Command {
  return cmd
    .option("--tree <path>", "a kernel tree of your own (default: a packaged one, see --kernel)")
    .addOption(new Option("--kernel <version>", "packaged Debian kernel tree").choices([...PACKAGED_KERNELS]))
    .option("--config <fragment>", "extra Kconfig fragment (repeatable)", collect, [])
    .option("--debug", "a debug kernel: lockdep, KASAN, debug objects (kernel-config/debug.config)")
    .option("--jobs <n>", "parallel make jobs", positiveInt);
}

function fragmentsOf(o: Record<string, unknown>): string[] {
  return [...(o.config as string[]), ...(o.debug ? [DEBUG_FRAGMENT] : [])];
}

treeOptions(program.command("build").description("configure and build the kernel"))
  .option("--arch <arch>", "x86_64, arm64 or all", "x86_64")
  .option("--build-timeout <s>", `deadline for the build (default ${DEFAULT_DEADLINES.build})`, positiveInt)
  .option("--json", "print the paths as JSON")
  .action(async (o) => {
    const archs = resolveArchs(o.arch);
    const tree = await resolveTree(o);
    const runDir = createRunDir("build");
    const builds = [];
    const timeoutMs = resolveDeadlines({ build: o.buildTimeout }).build * 1000;
    for (const arch of archs) {
      builds.push(
        await buildKernel({ tree, arch, fragments: fragmentsOf(o), jobs: o.jobs, runDir, timeoutMs }),
      );
    }
    if (o.json)
      process.stdout.write(`${JSON.stringify(builds.length === 1 ? builds[0] : builds, null, 2)}\n`);
    else
      for (const b of builds)
        process.stdout.write(
          `${b.arch} ${b.release}\n  boot image: ${b.bootImage}\n  vmlinux:    ${b.vmlinux}\n  config:     ${b.config}\n  log:        ${b.log}\n`,
        );
  });

function machineOptions(cmd: Command): Command {
  const d = DEFAULT_DEADLINES;
  return cmd
    .addOption(new Option("--accel <accel>", "override the KVM probe").choices(["kvm", "tcg"]))
    .option("--cpus <n>", "guest CPUs (timer_lockup needs 2)", positiveInt, 2)
    .option("--memory <MiB>", "guest memory", positiveInt, 2048)
    .option("--append <param>", "kernel command-line parameter (repeatable)", collect, [])
    .option(
      "--build-timeout <s>",
      `deadline for the kernel and selftests builds (default ${d.build})`,
      positiveInt,
    )
    .option("--boot-timeout <s>", `deadline for boot to SSH (default ${d.boot})`, positiveInt);
}

/** Options of the commands that run a suite: the deadlines past boot, and retries. */
function runOptions(cmd: Command): Command {
  const d = DEFAULT_DEADLINES;
  return cmd
    .option(
      "--push-timeout <s>",
      `deadline for pushing files into the guest (default ${d.push})`,
      positiveInt,
    )
    .option("--timeout <s>", `deadline for the whole run (default ${d.total})`, positiveInt)
    .option(
      "--retries <n>",
      "run failed tests again up to N times; one that passes is reported flaky",
      count,
      0,
    );
}

/** Deadlines in seconds given on the command line; the suite's and the defaults fill the rest. */
function cliDeadlines(o: Record<string, unknown>): Partial<Deadlines> {
  const d: Partial<Deadlines> = {};
  for (const [k, flag] of [
    ["build", "buildTimeout"],
    ["boot", "bootTimeout"],
    ["push", "pushTimeout"],
    ["total", "timeout"],
  ] as const)
    if (o[flag] !== undefined) d[k] = o[flag] as number;
  return d;
}

function machineSpec(o: Record<string, unknown>): MachineSpec {
  return {
    jobs: o.jobs as number | undefined,
    accel: o.accel as Accel | undefined,
    cpus: o.cpus as number,
    memoryMiB: o.memory as number,
    append: o.append as string[],
    deadlines: cliDeadlines(o),
    retries: (o.retries as number | undefined) ?? 0,
  };
}

function guestOptions(cmd: Command): Command {
  return machineOptions(treeOptions(cmd)).option("--arch <arch>", "x86_64 or arm64", "x86_64");
}

async function guestRequest(o: Record<string, unknown>, kind: string): Promise<GuestRequest> {
  const [arch, more] = resolveArchs(String(o.arch));
  if (!arch || more) throw new KhilError(`--arch ${String(o.arch)}: this command takes one architecture`);
  const tree = await resolveTree(o as { tree?: string; kernel?: string });
  const d = resolveDeadlines(cliDeadlines(o));
  return {
    arch,
    tree,
    fragments: fragmentsOf(o),
    jobs: o.jobs as number | undefined,
    runDir: createRunDir(`${kind}-${arch.name}`),
    accel: o.accel as Accel | undefined,
    buildTimeoutMs: d.build * 1000,
    bootTimeoutMs: d.boot * 1000,
    cpus: o.cpus as number,
    memoryMiB: o.memory as number,
    append: o.append as string[],
  };
}

guestOptions(program.command("boot").description("boot the guest and keep it until Ctrl-C")).action(
  async (o) => {
    const req = await guestRequest(o, "boot");
    const { guest } = await bootGuest(req, await buildFor(req));
    process.stdout.write(
      `guest ${req.arch.name} ready in ${guest.bootSeconds.toFixed(1)} s (${guest.accel}); console: ${guest.consoleLog}\n` +
        `reach it with: ssh -i ${guestKey().path} -p ${guest.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1\n` +
        "Ctrl-C stops it.\n",
    );
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (!guest.running) {
          clearInterval(t);
          resolve();
        }
      }, 500);
    });
    await guest.stop();
    throw new KhilError("the guest stopped by itself; see its console log", 1);
  },
);

guestOptions(program.command("exec").description("boot, run one command over SSH, exit with its exit code"))
  .argument("<command...>", "command and arguments, after --")
  .action(async (command: string[], o) => {
    const req = await guestRequest(o, "exec");
    const { guest } = await bootGuest(req, await buildFor(req));
    try {
      const r = await guest.ssh.exec(shellQuote(command), { stdout: process.stdout, stderr: process.stderr });
      process.exitCode = r.code ?? 255;
    } finally {
      await guest.stop();
    }
  });

guestOptions(
  program.command("shell").description("boot and open an interactive shell; the guest stops with it"),
).action(async (o) => {
  const req = await guestRequest(o, "shell");
  const { guest } = await bootGuest(req, await buildFor(req));
  try {
    process.exitCode = await guest.ssh.shell();
  } finally {
    await guest.stop();
  }
});

runOptions(
  machineOptions(
    treeOptions(
      program.command("boot-and-test").description("build, boot, push the suite's selftests, run and report"),
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
    const tree = await resolveTree(o);
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

runOptions(
  machineOptions(program.command("matrix").description("run every cell of a matrix file on this machine")),
)
  .option("--file <matrix.yaml>", "the matrix", "matrix.yaml")
  .option("--cell <name>", "run only this cell (repeatable)", collect, [])
  .option("--out <dir>", "the run directory (default: a new one under runs/)")
  .option("--jobs <n>", "parallel make jobs", positiveInt)
  .action(async (o) => {
    const all = expandMatrix(loadMatrix(o.file));
    const unknown = (o.cell as string[]).filter((c) => !all.some((x) => x.name === c));
    if (unknown.length)
      throw new KhilError(
        `unknown cell ${unknown.join(", ")}: valid are ${all.map((c) => c.name).join(", ")}`,
      );
    const cells = o.cell.length ? all.filter((c) => o.cell.includes(c.name)) : all;
    const runDir = o.out ? resolve(o.out) : createRunDir("matrix");
    mkdirSync(runDir, { recursive: true });
    const machine = machineSpec(o);
    machine.runDeadline = runDeadline(
      machine,
      cells.map((c) => loadSuite(c.suite)),
    );
    const results = await runMatrix(cells, runDir, machine);
    annotate(results);
    process.exitCode = allPassed(results) ? 0 : 1;
  });

const report = program.command("report").description("work with run directories");
report
  .command("merge")
  .description("merge run directories (cells run anywhere) into one report")
  .argument("<dirs...>", "run directories holding results.json")
  .option("--out <dir>", "where to write the merged results.json, junit.xml and summary.md")
  .option("--markdown", "print the Markdown table instead of the text one")
  .action((dirs: string[], o) => {
    const runDir = o.out ? resolve(o.out) : createRunDir("report");
    mkdirSync(runDir, { recursive: true });
    const merged = mergeResults(dirs.map(readRunDir), runDir);
    writeReports(merged);
    writeFileSync(join(runDir, "summary.md"), toMarkdown(merged));
    process.stdout.write(o.markdown ? toMarkdown(merged) : `${matrixTable(merged)}\nresults: ${runDir}\n`);
    annotate(merged);
    process.exitCode = allPassed(merged) ? 0 : 1;
  });

program
  .command("ci")
  .description("write CI configuration")
  .command("github")
  .description("a GitHub Actions workflow running each matrix cell as a job and merging their reports")
  .option("--file <matrix.yaml>", "the matrix", "matrix.yaml")
  .option("--out <file>", "write here instead of stdout")
  .action((o) => {
    const text = githubWorkflow(expandMatrix(loadMatrix(o.file)), o.file);
    if (o.out) writeFileSync(o.out, text);
    else process.stdout.write(text);
  });

function stepOptions(cmd: Command): Command {
  return runOptions(machineOptions(cmd))
    .requiredOption("--tree <path>", "the git kernel tree to bisect")
    .option("--arch <arch>", "x86_64 or arm64", "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "judge only these tests (repeatable)", collect, [])
    .option("--jobs <n>", "parallel make jobs", positiveInt);
}

function stepArgs(o: Record<string, unknown>): StepOptions {
  const [arch, more] = resolveArchs(String(o.arch));
  if (!arch || more) throw new KhilError(`--arch ${String(o.arch)}: bisect takes one architecture`);
  const tests = o.test as string[];
  return {
    tree: checkUserTree(String(o.tree)),
    arch,
    suite: loadSuite(String(o.suite)),
    tests: tests.length ? tests : undefined,
    machine: machineSpec(o),
  };
}

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

program
  .command("bench")
  .description("each khil stage next to the same work done by the raw tools; writes bench.json")
  .option("--arch <arch>", "x86_64 or arm64", "x86_64")
  .option("--quick", "leave out the cold build (two full kernel builds without ccache)")
  .option("--runs <n>", "samples of the repeated stages", positiveInt, 3)
  .action(async (o) => {
    const [arch, more] = resolveArchs(o.arch);
    if (!arch || more) throw new KhilError(`--arch ${o.arch}: bench takes one architecture`);
    await runBench(arch, {
      quick: Boolean(o.quick),
      runs: o.runs,
      runDir: createRunDir(`bench-${arch.name}`),
    });
  });

/** Under GitHub Actions, failures become annotations too. */
function annotate(results: Results): void {
  if (process.env.GITHUB_ACTIONS === "true")
    for (const l of githubAnnotations(results)) process.stdout.write(`${l}\n`);
}

try {
  await program.parseAsync();
} catch (e) {
  const err = e as { code?: string; exitCode?: number };
  if (typeof err.code === "string" && err.code.startsWith("commander.")) {
    process.exitCode = err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2;
  } else if (e instanceof KhilError) {
    process.stderr.write(`khil: error: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else if (diskProblem(err.code)) {
    process.stderr.write(`khil: error: the disk ${diskProblem(err.code)}: ${(e as Error).message}\n`);
    process.exitCode = 2;
  } else {
    throw e;
  }
}
