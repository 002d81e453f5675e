/**
 * One matrix cell made into a LAVA job: built here (kernel, selftests) like a local cell, its files put in
 * the initramfs, kernel and initramfs placed in the artefacts directory by content hash, and the job that
 * boots them at the URL the lab fetches them from.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { FACTS_SCRIPT, jitAsked } from "../guest/facts.ts";
import { buildImage } from "../guest/image.ts";
import { kernelCmdline } from "../guest/qemu.ts";
import { shellQuote } from "../guest/ssh.ts";
import { guestKey } from "../guest/ssh-key.ts";
import {
  type CellAxes,
  type CellSpec,
  cellSpec,
  deadlines,
  type MachineSpec,
  newRun,
  type Prepared,
  prepareCell,
} from "../run/cell.ts";
import { type Command, commandArgv, GUEST_DIR, inGuestDir } from "../run/context.ts";
import { BOOKKEEPING } from "../run/kernel-log.ts";
import { programsAmong } from "../run/push.ts";
import { rerunWhy } from "../run/rerun.ts";
import {
  type CheckedSelection,
  splitDenied,
  testProgsSelection,
  testProgsSelectionArgs,
} from "../run/selection.ts";
import { type Selection, type Suite, selectTests, treeDenyFor } from "../run/suite.ts";
import { declaredTests } from "../selftests/build.ts";
import { type JobCommand, lavaJob } from "./job.ts";

/** A copy of `file` in `dir` named by its content, so that a lab's cache never serves a stale one. */
function placeArtefact(file: string, dir: string): string {
  const hash = createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16);
  const name = `${hash}-${basename(file)}`;
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, name))) copyFileSync(file, join(dir, name));
  return name;
}

/** Where a test_progs command's output is also kept in the guest, for the rerun step after it. */
const outputFile = (name: string) => `/tmp/khil-out-${name}`;

/** A suite's test glob as a shell `case` pattern: its `*` and `?` still match, every other character is literal. */
export function casePattern(glob: string): string {
  return glob.replace(/[^A-Za-z0-9_*?./-]/g, "\\$&");
}

/** The step after a test_progs command that runs its inconclusive skips again alone (`rerunSkipped`). */
export const rerunStep = (name: string) => `${name}-rerun`;

/**
 * The steps a suite's command becomes in the job: test_progs with its plan's `-a` list, then the rerun of
 * its inconclusive skips; anything else as written.
 */
export function jobCommands(cmd: Command, suite: Suite, plan: TestProgsPlan | undefined): JobCommand[] {
  if (cmd.kselftest !== undefined)
    throw new KhilError(`command ${cmd.name}: kselftest commands do not run in LAVA jobs yet`);
  if (!plan) return [{ name: cmd.name, line: inGuestDir(commandArgv(cmd)) }];
  // As locally: a command whose every test is denied does not run.
  if (plan.toRun.length === 0) return [];
  const argv = commandArgv(cmd, testProgsSelectionArgs(plan));
  const first = {
    name: cmd.name,
    // The output also goes to a file for the rerun step; pipefail keeps test_progs' own exit code.
    line: `(set -o pipefail; ${inGuestDir(argv)} 2>&1 | tee ${outputFile(cmd.name)})`,
  };
  const skips = suite.rerunSkipped;
  if (!skips) return [first];
  // As a local run does (run/rerun.ts): each skipped test the suite names, alone, until it does not skip;
  // each attempt under the marker the host reads it back by.
  const attempts = Array.from({ length: skips.times }, (_, i) => i + 2).join(" ");
  // Denied subtests stay out of an attempt as of the first run (-d names each with its test).
  const again = shellQuote(
    commandArgv(cmd, [...(plan.deny.length ? ["-d", plan.deny.join(",")] : []), "-a"]),
  );
  const skipped = "^#[0-9]* *$t:SKIP";
  const loop = [
    `cd ${GUEST_DIR};`,
    `for t in $(sed -n 's/^#[0-9]* *\\([^ :/]*\\):SKIP.*/\\1/p' ${outputFile(cmd.name)}); do`,
    `case "$t" in ${skips.tests.map(casePattern).join("|")}) for i in ${attempts}; do`,
    `echo "# khil: $t ${rerunWhy("skip", "$i")}:"; ${again} "$t" 2>&1 | tee /tmp/khil-again;`,
    `grep -q "${skipped}" /tmp/khil-again || break; done;; esac; done; true`,
  ];
  return [first, { name: rerunStep(cmd.name), line: loop.join(" ") }];
}

/** The first command of every job: what the local run reads over SSH before its tests. */
export const FACTS_COMMAND: JobCommand = { name: "khil-facts", line: `${FACTS_SCRIPT}; true` };

/**
 * The last command of every job: the kernel's bookkeeping (run/kernel-log.ts), read after a settle, as a
 * local run reads it at its end.
 */
export const BOOKKEEPING_COMMAND: JobCommand = {
  name: "khil-bookkeeping",
  line: `sleep 0.5; ${BOOKKEEPING}`,
};

/**
 * What a test_progs command runs, split as a local run splits `test_progs -l` (run/selection.ts): here the
 * list is read from the prog_tests the selftests build holds, since nobody is in the guest to ask.
 */
export type TestProgsPlan = CheckedSelection;

function testProgsPlan(cmd: Command, spec: CellSpec, sel: Selection): TestProgsPlan {
  const selection = cmd.tests ?? sel.tests;
  const testGlobs = selection.map((p) => p.split("/")[0] ?? p);
  const listed = declaredTests(spec.tree.path, spec.suite.build?.progTests ?? ["*"]).filter((t) =>
    matchesAny(t, testGlobs),
  );
  return testProgsSelection(splitDenied(sel, listed, true), selection);
}

export interface CellJob {
  definition: string;
  /** The facts command, then the suite's commands, as the job runs them. */
  commands: JobCommand[];
  /** For each test_progs command, by name. */
  plans: Map<string, TestProgsPlan>;
}

/**
 * The job's own timeout, from the deadlines a local run of the cell would have: boot, push and every
 * command's, plus 5 minutes for the lab's deploy, within the whole run's deadline.
 */
export function jobMinutes(spec: CellSpec): number {
  const d = deadlines(spec);
  const commands = spec.suite.commands.reduce((s, c) => s + c.timeout, 0);
  return Math.ceil(Math.min(d.total, d.boot + d.push + commands + 300) / 60);
}

/** The job of a built cell: its initramfs made, kernel and initramfs placed, the commands written. */
export async function jobFor(
  spec: CellSpec,
  prepared: Prepared,
  o: { artifacts: string; artifactsUrl: string },
): Promise<CellJob> {
  const { arch, suite, machine } = spec;
  const { build, pushes } = prepared;
  const image = await buildImage(
    arch,
    guestKey().publicKey,
    pushes.flatMap((x) => programsAmong(x.dir, x.files)),
    pushes,
    suite.image,
  );
  const url = o.artifactsUrl.replace(/\/?$/, "/");
  const jit = jitAsked(machine.append).enable === "0" ? "off" : "on";
  const selection = selectTests(
    suite,
    arch.name,
    build.release,
    jit,
    treeDenyFor(suite, spec.tree.path, arch),
  );
  const plans = new Map(
    suite.commands
      .filter((c) => c.parser === "test_progs")
      .map((c) => [c.name, testProgsPlan(c, spec, selection)] as const),
  );
  const commands = [
    FACTS_COMMAND,
    ...suite.commands.flatMap((c) => jobCommands(c, suite, plans.get(c.name))),
    BOOKKEEPING_COMMAND,
  ];
  const definition = lavaJob({
    cell: spec.cell ?? arch.name,
    arch,
    suite: suite.name,
    kernelUrl: url + placeArtefact(build.bootImage, o.artifacts),
    initrdUrl: url + placeArtefact(image.path, o.artifacts),
    cmdline: kernelCmdline(arch, {}, machine.append),
    cpus: machine.cpus,
    commands,
    jobMinutes: jobMinutes(spec),
    testMinutes: Math.ceil(suite.commands.reduce((s, c) => s + c.timeout, 0) / 60),
  });
  return { definition, commands, plans };
}

/** `khil lava job`: the cell built here, and its job. */
export async function cellJob(
  cell: CellAxes,
  machine: MachineSpec,
  o: { artifacts: string; artifactsUrl: string; runDir: string },
): Promise<string> {
  const spec = await cellSpec(cell, machine, o.runDir);
  const run = newRun(spec);
  const prepared = await prepareCell(spec, run);
  if (!prepared)
    throw new KhilError(
      `${cell.name}: ${run.error?.stage ?? "build"} failed: ${run.error?.message ?? ""}`,
      1,
    );
  return (await jobFor(spec, prepared, o)).definition;
}
