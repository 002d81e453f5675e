import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { resolveArchs } from "./arch.ts";
import { runBench } from "./bench.ts";
import { bisect, bisectStep, EXIT, type StepOptions } from "./bisect.ts";
import { bootAndTest, writeReports } from "./boot-and-test.ts";
import { githubWorkflow } from "./ci-github.ts";
import { KhilError } from "./errors.ts";
import { buildKernel } from "./kbuild.ts";
import { expandMatrix, loadMatrix } from "./matrix.ts";
import { runMatrix } from "./matrix-run.ts";
import { bootGuest, buildFor, type GuestRequest } from "./prepare.ts";
import { githubAnnotations, matrixTable, toMarkdown } from "./report.ts";
import { mergeResults, readRunDir } from "./report-merge.ts";
import { allPassed, type Results } from "./results.ts";
import { createRunDir } from "./run-dir.ts";
import { shellQuote } from "./ssh.ts";
import { guestKey } from "./ssh-key.ts";
import { loadSuite } from "./suite.ts";
import { isKernelTree, PACKAGED_KERNELS, resolveTree } from "./tree.ts";

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("must be a positive whole number");
  return n;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

const program = new Command("khil")
  .description("build a kernel carrying the BPF timer series, boot it under QEMU, run its selftests over SSH")
  .exitOverride();

function treeOptions(cmd: Command): Command {
  return cmd
    .option("--tree <path>", "a kernel tree of your own (default: a packaged one, see --kernel)")
    .addOption(new Option("--kernel <version>", "packaged Debian kernel tree").choices([...PACKAGED_KERNELS]))
    .option("--config <fragment>", "extra Kconfig fragment (repeatable)", collect, [])
    .option("--jobs <n>", "parallel make jobs", positiveInt);
}

treeOptions(program.command("build").description("configure and build the kernel"))
  .option("--arch <arch>", "x86_64, arm64 or all", "x86_64")
  .option("--json", "print the paths as JSON")
  .action(async (o) => {
    const archs = resolveArchs(o.arch);
    const tree = await resolveTree(o);
    const runDir = createRunDir("build");
    const builds = [];
    for (const arch of archs) {
      builds.push(await buildKernel({ tree, arch, fragments: o.config, jobs: o.jobs, runDir }));
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
  return cmd
    .addOption(new Option("--accel <accel>", "override the KVM probe").choices(["kvm", "tcg"]))
    .option("--cpus <n>", "guest CPUs (timer_lockup needs 2)", positiveInt, 2)
    .option("--memory <MiB>", "guest memory", positiveInt, 2048)
    .option("--boot-timeout <s>", "deadline for boot to SSH, seconds", positiveInt, 60);
}

function guestOptions(cmd: Command): Command {
  return machineOptions(treeOptions(cmd)).option("--arch <arch>", "x86_64 or arm64", "x86_64");
}

async function guestRequest(o: Record<string, unknown>, kind: string): Promise<GuestRequest> {
  const [arch, more] = resolveArchs(String(o.arch));
  if (!arch || more) throw new KhilError(`--arch ${String(o.arch)}: this command takes one architecture`);
  const tree = await resolveTree(o as { tree?: string; kernel?: string });
  return {
    arch,
    tree,
    fragments: o.config as string[],
    jobs: o.jobs as number | undefined,
    runDir: createRunDir(`${kind}-${arch.name}`),
    accel: o.accel as "kvm" | "tcg" | undefined,
    bootTimeoutMs: (o.bootTimeout as number) * 1000,
    cpus: o.cpus as number,
    memoryMiB: o.memory as number,
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

machineOptions(
  treeOptions(
    program.command("boot-and-test").description("build, boot, push the suite's selftests, run and report"),
  ),
)
  .option("--arch <arch>", "x86_64, arm64, a comma list, or all", "x86_64")
  .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
  .option("--test <glob>", "run these tests instead of the suite's selection (repeatable)", collect, [])
  .option("--no-deny", "also run the tests the suite's deny list skips")
  .option("--push-timeout <s>", "deadline for pushing files into the guest, seconds", positiveInt, 120)
  .action(async (o) => {
    const archs = resolveArchs(o.arch);
    const suite = loadSuite(o.suite);
    const tree = await resolveTree(o);
    const runDir = createRunDir(`boot-and-test-${o.arch}`);
    const specs = archs.map((arch) => ({
      arch,
      tree,
      suite,
      fragments: o.config,
      tests: o.test.length ? o.test : undefined,
      deny: o.deny,
      jobs: o.jobs,
      accel: o.accel,
      bootTimeoutMs: o.bootTimeout * 1000,
      cpus: o.cpus,
      memoryMiB: o.memory,
      pushTimeoutMs: o.pushTimeout * 1000,
      runDir,
    }));
    const results = await bootAndTest(specs, runDir);
    process.exitCode = allPassed(results) ? 0 : 1;
  });

machineOptions(program.command("matrix").description("run every cell of a matrix file on this machine"))
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
    const results = await runMatrix(cells, runDir, {
      jobs: o.jobs,
      accel: o.accel,
      bootTimeoutMs: o.bootTimeout * 1000,
      cpus: o.cpus,
      memoryMiB: o.memory,
      pushTimeoutMs: 120_000,
    });
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
  return machineOptions(cmd)
    .requiredOption("--tree <path>", "the git kernel tree to bisect")
    .option("--arch <arch>", "x86_64 or arm64", "x86_64")
    .option("--suite <name|file>", "suite name in suites/ or a path to a suite file", "bpf-timer")
    .option("--test <glob>", "judge only these tests (repeatable)", collect, [])
    .option("--jobs <n>", "parallel make jobs", positiveInt);
}

function stepArgs(o: Record<string, unknown>): StepOptions {
  const [arch, more] = resolveArchs(String(o.arch));
  if (!arch || more) throw new KhilError(`--arch ${String(o.arch)}: bisect takes one architecture`);
  if (!isKernelTree(String(o.tree))) throw new KhilError(`--tree ${String(o.tree)}: not a Linux kernel tree`);
  const tests = o.test as string[];
  return {
    tree: resolve(String(o.tree)),
    arch,
    suite: loadSuite(String(o.suite)),
    tests: tests.length ? tests : undefined,
    machine: {
      jobs: o.jobs as number | undefined,
      accel: o.accel as "kvm" | "tcg" | undefined,
      bootTimeoutMs: (o.bootTimeout as number) * 1000,
      cpus: o.cpus as number,
      memoryMiB: o.memory as number,
      pushTimeoutMs: 120_000,
    },
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
    for (const k of ["cpus", "memory", "bootTimeout", "accel", "jobs"] as const)
      if (o[k] !== undefined)
        pass.push(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(o[k]));
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
  } else {
    throw e;
  }
}
