/** Options several commands share, and the conversions from parsed options to what the pipeline takes. */
import { statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { type Arch, resolveArchs } from "../arch/arch.ts";
import { KhilError } from "../common/errors.ts";
import type { Accel } from "../guest/qemu.ts";
import { defaultHistoryFile } from "../history/db.ts";
import { type History, openHistory } from "../history/history.ts";
import { projectRoot } from "../host/paths.ts";
import { applySeries } from "../kernel/series.ts";
import { type KernelTree, PACKAGED_KERNELS, resolveTree } from "../kernel/tree.ts";
import { githubAnnotations } from "../report/annotations.ts";
import type { Results } from "../report/results.ts";
import type { MachineSpec } from "../run/cell.ts";
import { GUEST_DIR } from "../run/context.ts";
import { DEFAULT_DEADLINES, type Deadlines } from "../run/deadlines.ts";
import type { Push } from "../run/push.ts";

export type Opts = Record<string, unknown>;

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("must be a positive whole number");
  return n;
}

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number, 0 or more");
  return n;
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function jobsOption(): Option {
  return new Option("--jobs <n>", "parallel make jobs").argParser(positiveInt);
}

/** The one architecture of a command that takes one. */
export function oneArch(spec: string, command: string): Arch {
  const [arch, more] = resolveArchs(spec);
  if (!arch || more) throw new KhilError(`--arch ${spec}: ${command} takes one architecture`);
  return arch;
}

const DEBUG_FRAGMENT = join(projectRoot, "kernel-config", "debug.config");

/** The user's Kconfig on top of khil's and the suite's. */
export function configOptions(cmd: Command): Command {
  return cmd
    .option("--config <fragment>", "extra Kconfig fragment (repeatable)", collect, [])
    .option("--debug", "a debug kernel: lockdep, KASAN, debug objects (kernel-config/debug.config)");
}

export function treeOptions(cmd: Command): Command {
  return configOptions(
    cmd
      .option("--tree <path>", "a kernel tree of your own (default: a packaged one, see --kernel)")
      .addOption(
        new Option("--kernel <version>", "packaged Debian kernel tree").choices([...PACKAGED_KERNELS]),
      )
      .option(
        "--series <mbox|dir|A..B>",
        "a patch series applied onto the tree first: an mbox (.gz too), a directory of format-patch files, or a range of --tree",
      )
      .option(
        "--series-version <n>",
        "the version of the series to take from the mbox (default: the latest)",
        positiveInt,
      ),
  ).addOption(jobsOption());
}

/** The tree a command builds: the packaged or given one, with `--series` applied onto it. */
export async function treeOf(o: Opts): Promise<KernelTree> {
  const base = await resolveTree(o);
  if (!o.series) return base;
  return applySeries(base, o.series as string, o.seriesVersion as number | undefined);
}

/** The fragment files of `--config` and `--debug`, as absolute paths (a bisect step runs elsewhere). */
export function fragmentsOf(o: Opts): string[] {
  return [...(o.config as string[]).map((f) => resolve(f)), ...(o.debug ? [DEBUG_FRAGMENT] : [])];
}

export function machineOptions(cmd: Command): Command {
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
export function runOptions(cmd: Command): Command {
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
    )
    .option(
      "--history <file|none>",
      `the results database each run is judged against and recorded in (default $KHIL_HISTORY, else ${defaultHistoryFile()}), or none`,
    );
}

/** The results database of `--history` (else $KHIL_HISTORY), recording runs as made by `origin` (the command). */
export function historyOf(o: Opts, origin: string): History | undefined {
  const file = (o.history as string | undefined) ?? process.env.KHIL_HISTORY;
  return openHistory(file === undefined || file === "none" ? file : resolve(file), origin);
}

/** Deadlines in seconds given on the command line; the suite's and the defaults fill the rest. */
export function cliDeadlines(o: Opts): Partial<Deadlines> {
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

export function machineSpec(o: Opts): MachineSpec {
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

/** Under GitHub Actions, failures become annotations too. */
export function annotate(results: Results): void {
  if (process.env.GITHUB_ACTIONS === "true")
    for (const l of githubAnnotations(results)) process.stdout.write(`${l}\n`);
}

/** exec, shell and boot-and-test take host files along: a module or a program built here. */
export function pushOption(cmd: Command): Command {
  return cmd.option(
    "--push <file>",
    `a host file to copy into the guest's ${GUEST_DIR}, where commands start (repeatable)`,
    collect,
    [],
  );
}

/** Checked before the build, so that a misspelt path does not cost a kernel build first. */
export function hostPushes(o: Opts): Push[] {
  const files = (o.push as string[]).map((f) => resolve(f));
  const missing = files.filter((f) => !statSync(f, { throwIfNoEntry: false })?.isFile());
  if (missing.length) throw new KhilError(`--push: ${missing.join(", ")}: no such file`, 2);
  return files.map((f) => ({ dir: dirname(f), files: [basename(f)], dest: GUEST_DIR }));
}
