/**
 * One fault taxonomy for every verdict. Whatever a run found is a fault of one class, decided here once:
 * - kernel: the kernel under test misbehaved: a splat the console showed, a report only its own bookkeeping
 *   told (taint, debug_locks), a guest that died or vanished, a tree that does not compile;
 * - test: a test failed, or a program's output contradicts itself, while the kernel reported nothing;
 * - harness: the machine, not the kernel: khil's deadline, QEMU killed from outside, a stage of khil's own that
 *   failed (a full disk, the network, a build timeout, an OOM-killed compiler), a guest unfit to test.
 * The run's status (verdict.ts), JUnit, the summary, Markdown, GitHub annotations, bisect's answer and the
 * LAVA engine all read this one list.
 */
import type { FaultClass } from "../common/errors.ts";
import { type ArchRun, failing, splatWhen, testName } from "./results.ts";

export type { FaultClass };

export interface Fault {
  class: FaultClass;
  /** `kernel warning`, `problem`, `harness fault`, `interrupted`, `test fail`, or the stage that ended the run. */
  what: string;
  text: string;
  /** One line for a reason (bisect's, a table's): what, where and the first line of the text. */
  brief: string;
  /** The stage or test it is charged to: a splat's `during`, a failing test's name, a failed stage. */
  where: string;
  /** It came after an interruption (ArchRun.interrupted) and may follow from it: no evidence of its own. */
  followsInterruption?: boolean;
}

/** A stage failing is the kernel's only where the kernel itself was the cause; these stages build or apply it. */
const KERNEL_STAGES = new Set(["build"]);

/** The class of a stage's failure: what the stage said it was, else by the stage. */
export function errorClass(error: NonNullable<ArchRun["error"]>): FaultClass {
  return error.fault ?? (KERNEL_STAGES.has(error.stage) ? "kernel" : "harness");
}

const firstLine = (m: string) => m.split("\n")[0] ?? m;

const fault = (c: FaultClass, what: string, text: string, where: string): Fault => ({
  class: c,
  what,
  text,
  brief: `${what}: ${firstLine(text)}`,
  where,
});

/** Every fault of a run, tests included, each with its class. */
export function faults(run: ArchRun): Fault[] {
  const cut = Boolean(run.interrupted);
  const tests = run.tests
    // A known flake in quarantine is reported (history/judge.ts) but is no fault of the run's.
    .filter(failing)
    // A test left unrun by a stage that failed, or by the interruption, is that stage's fault, not its own.
    .filter((t) => t.verdict !== "notrun" || !(run.error || cut))
    .map(
      (t): Fault => ({
        class: "test",
        what: `test ${t.verdict}`,
        text: `${testName(t)}${t.reason ? `: ${t.reason}` : ""}`,
        brief: testName(t),
        where: testName(t),
        ...(t.afterInterruption ? { followsInterruption: true } : {}),
      }),
    );
  return [...findings(run), ...tests];
}

/** Everything a run found besides its tests' verdicts, as every report lists it: each one fails the run. */
export function findings(run: ArchRun): Fault[] {
  const cut = Boolean(run.interrupted);
  return [
    ...run.splats.map(
      (s): Fault => ({
        class: "kernel",
        what: `kernel ${s.kind}`,
        // The fingerprint (fingerprint.ts) names the bug across runs: the same one in another run is this one.
        text: `during ${splatWhen(s)} (${s.source}): ${s.title}${s.fingerprint ? ` [fingerprint ${s.fingerprint}]` : ""}`,
        brief: `kernel ${s.kind} during ${splatWhen(s)}: ${firstLine(s.title)}`,
        where: s.during,
      }),
    ),
    // What the output contradicts after an interruption (a command cut short) follows from it.
    ...run.problems.map(
      (text): Fault => ({
        class: "test",
        what: "problem",
        text,
        brief: firstLine(text),
        where: "run",
        ...(cut ? { followsInterruption: true } : {}),
      }),
    ),
    ...(run.harness ?? []).map(
      (text): Fault => ({
        class: "harness",
        what: "harness fault",
        text,
        brief: firstLine(text),
        where: "run",
      }),
    ),
    ...(run.interrupted ? [fault("harness", "interrupted", run.interrupted, "run")] : []),
    ...(run.error ? [fault(errorClass(run.error), run.error.stage, run.error.message, run.error.stage)] : []),
    // Nothing stopped it and nothing was found, yet no selected test gave a result (verdict.ts: ERROR).
    ...(noResult(run) ? [fault("harness", "results", "no selected test gave a result", "run")] : []),
  ];
}

function noResult(run: ArchRun): boolean {
  const found = run.splats.length + run.problems.length + (run.harness ?? []).length;
  return !run.error && !run.interrupted && found === 0 && !run.tests.some((t) => !t.subtest);
}

const RANK: FaultClass[] = ["kernel", "test", "harness"];

/** The run's fault: the weightiest class among its faults (kernel over test over harness), or none. */
export function runFault(run: ArchRun): FaultClass | undefined {
  const all = faults(run).filter((f) => !f.followsInterruption);
  return RANK.find((c) => all.some((f) => f.class === c));
}

/** What each class means to someone reading a report, and to `git bisect run`. */
export const FAULT_MEANING: Record<FaultClass, string> = {
  kernel: "the kernel under test misbehaved (bisect: bad, as --type counts it)",
  test: "a test failed while the kernel reported nothing (bisect: bad)",
  harness: "the machine or khil, not the kernel: this run cannot judge it (bisect: skip)",
};
