import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { lineSplitter } from "../common/lines.ts";
import { log } from "../common/log.ts";
import { shellQuote } from "../guest/ssh.ts";
import { parseOutput } from "../parse/dispatch.ts";
import { ktapExitProblems } from "../parse/ktap.ts";
import { type Measure, parseMeasures } from "../parse/measures.ts";
import type { Splat } from "../parse/splats.ts";
import { deathCause, diedWhileRunning, exitCodeProblems, withJsonSummary } from "../parse/test-progs.ts";
import type { ParsedTest } from "../parse/types.ts";
import { applyBounds, type Bound, limitFor } from "../report/bounds.ts";
import type { ArchRun, TestRecord } from "../report/results.ts";
import { type Command, commandArgv, inGuestDir, type SuiteRunContext } from "./context.ts";
import { STUCK_GRACE_MS } from "./kernel-log.ts";
import { rerunTests } from "./rerun.ts";
import { checkKselftestSelection, checkSelection, type Denied, testProgsSelectionArgs } from "./selection.ts";

const JSON_SUMMARY = "/tmp/khil-summary.json";

/** Lines that are results, test_progs' or kselftest runner's, for live progress and per-test wall time. */
const LIVE_RESULT = /^#\d+\s+(\S+):(OK|FAIL|SKIP)|^(ok|not ok) \d+ selftests: [^:]+: (\S+)/;

/** The test a live result line names, and its word (OK, FAIL, SKIP, ok). */
export function liveResult(line: string): { test: string; word: string } | undefined {
  const m = LIVE_RESULT.exec(line);
  const test = m?.[1] ?? m?.[4];
  return test ? { test, word: m?.[2] ?? (m?.[3] === "ok" ? "ok" : "FAIL") } : undefined;
}

/**
 * Why a command ended, in the words results use, whether it ran over SSH or in a lab (lava/engine.ts):
 * test_progs' cause when khil stopped it, and the problems recorded.
 */
export const stopped = {
  atDeadline: (cmd: Command) => `was stopped at its ${cmd.timeout} s deadline`,
  afterStuck: (stuck: Splat) => `was stopped after the kernel reported a ${stuck.kind}`,
  timeoutProblem: (cmd: Command) => `timeout: command ${cmd.name} after ${cmd.timeout} s`,
  stuckProblem: (cmd: Command, stuck: Splat) =>
    `stopped command ${cmd.name} ${STUCK_GRACE_MS / 1000} s after the kernel reported a ${stuck.kind}: ${stuck.title}`,
  notRunProblem: (stuck: Splat, names: readonly string[]) =>
    `the kernel reported a ${stuck.kind}: ${names.join(", ")} not run`,
};

/**
 * A command's parsed tests and measures, added to the run's results, once the suite's bounds have judged
 * the measures (a breach fails the test it bounds, whether the guest ran here or in a lab). A test that
 * ended inconclusive (it says so: `SKIP inconclusive: ...`) with nothing of it passing tested nothing, and
 * the host is to blame: a harness fault, which fails the run and makes bisect skip the commit.
 */
export function recordParsed(
  run: ArchRun,
  base: Omit<TestRecord, "test" | "verdict">,
  tests: ParsedTest[],
  measures: readonly Measure[],
  bounds: readonly Bound[],
  durations: ReadonlyMap<string, number> = new Map(),
  afterInterruption = false,
): void {
  applyBounds(tests, measures, bounds, base.accel);
  const unsure = tests.filter(
    (t) => !t.subtest && t.verdict === "skip" && /^inconclusive\b/i.test(t.reason ?? ""),
  );
  if (unsure.length)
    run.harness = [...(run.harness ?? []), ...unsure.map((t) => `${t.test} tested nothing: ${t.reason}`)];
  if (measures.length)
    run.measures = [
      ...(run.measures ?? []),
      ...measures.map((m) => {
        // The bound judged on it, kept beside it for the reports' plots.
        const b = bounds.find((x) => x.measure === m.name);
        const at = b && limitFor(b, base.accel);
        return {
          ...m,
          command: base.command,
          ...(at ? { limit: { value: at.limit, under: at.under } } : {}),
        };
      }),
    ];
  for (const t of tests) {
    const rec: TestRecord = { ...base, test: t.test, verdict: t.verdict };
    if (t.subtest) rec.subtest = t.subtest;
    if (!t.subtest && durations.has(t.test)) rec.durationMs = durations.get(t.test);
    if (t.reason) rec.reason = t.reason;
    if (t.firstReason !== undefined) rec.firstReason = t.firstReason;
    if (t.log) rec.log = t.log;
    if (afterInterruption) rec.afterInterruption = true;
    run.tests.push(rec);
  }
}

/**
 * A command's stdout and stderr, written to its log a whole line at a time as they come and handed on line
 * by line. They travel apart (no `2>&1` in the guest): a test's child writing to stderr would otherwise
 * land inside a result line test_progs' buffered stdout had only half written, and that result was lost.
 */
function tee(file: string, onLine: (l: string) => void) {
  const out = createWriteStream(file, { flags: "a" });
  const lines = () =>
    lineSplitter((l) => {
      out.write(`${l}\n`);
      onLine(l);
    });
  const stdout = lines();
  const stderr = lines();
  const writable = (split: (d: Buffer) => void) =>
    ({
      write(d: Buffer) {
        split(d);
        return true;
      },
    }) as unknown as Writable;
  return {
    stdout: writable(stdout),
    stderr: writable(stderr),
    done: () => {
      stdout.flush();
      stderr.flush();
      return new Promise<void>((r) => out.end(r));
    },
  };
}

/** Runs the suite's commands in a booted guest whose files are pushed already. */
export async function runCommands(c: SuiteRunContext, run: ArchRun): Promise<void> {
  const cmds = c.suite.commands;
  for (const [i, cmd] of cmds.entries()) {
    await runCommand(c, run, cmd);
    const stuck = c.watch.stuck;
    if (stuck && i < cmds.length - 1) {
      const rest = cmds.slice(i + 1).map((x) => x.name);
      run.problems.push(stopped.notRunProblem(stuck, rest));
      return;
    }
  }
}

/** The tests a command selects: its own list, else the suite's for this arch. */
function commandTests(c: SuiteRunContext, cmd: Command): string[] {
  return cmd.tests ?? c.selection.tests;
}

/** Tests (and subtests) the deny lists took: skipped, with the reason, without running. */
export function recordDenied(
  run: ArchRun,
  base: Omit<TestRecord, "test" | "verdict">,
  denied: readonly Denied[],
): void {
  for (const t of denied)
    run.tests.push({
      ...base,
      test: t.test,
      ...(t.subtest ? { subtest: t.subtest } : {}),
      verdict: "skip",
      reason: `denied: ${t.reason}`,
    });
}

/** kselftest's runner's arguments: one `-t target:test` for each selected test that is not denied. */
async function kselftestArgs(
  c: SuiteRunContext,
  run: ArchRun,
  cmd: Command & { kselftest: string },
  base: Omit<TestRecord, "test" | "verdict">,
) {
  const sel = await checkKselftestSelection(c, cmd.run, cmd.kselftest, commandTests(c, cmd));
  recordDenied(run, base, sel.denied);
  return sel.toRun.length ? sel.allow : undefined;
}

/** test_progs' own arguments: the checked selection and, where it has one, a JSON summary. */
async function testProgsArgs(
  c: SuiteRunContext,
  run: ArchRun,
  cmd: Command,
  base: Omit<TestRecord, "test" | "verdict">,
) {
  const sel = await checkSelection(c, cmd.run, commandTests(c, cmd));
  recordDenied(run, base, sel.denied);
  if (sel.toRun.length === 0) return undefined;
  const help = await c.guest.ssh.capture(`${inGuestDir(cmd.run)} --help`);
  const json = /json-summary/.test(help.out + help.err);
  return {
    args: [...testProgsSelectionArgs(sel), ...(json ? ["-J", JSON_SUMMARY] : [])],
    json,
    toRun: sel.toRun,
  };
}

/** Runs one command and records its tests; the kernel watch records the splats. */
async function runCommand(c: SuiteRunContext, run: ArchRun, cmd: Command): Promise<void> {
  const { guest, arch } = c;
  const base = {
    arch: arch.name,
    kernel: c.build.release,
    accel: c.accel.accel,
    suite: c.suite.name,
    command: cmd.name,
  };
  // What the user's --test left to this command: its subtests as arguments, or nothing at all.
  const subtests = c.cli?.args.get(cmd.name);
  if (c.cli && (cmd.subtestArgs ? !subtests : !cmd.tests && c.cli.suite.length === 0)) return;
  let argv = commandArgv(cmd, subtests ?? []);
  let tp: { json: boolean; toRun: string[] } | undefined;
  if (cmd.parser === "test_progs") {
    const extra = await testProgsArgs(c, run, cmd, base);
    if (!extra) return;
    argv = [...argv, ...extra.args];
    tp = extra;
  }
  if (cmd.kselftest !== undefined) {
    const allow = await kselftestArgs(c, run, { ...cmd, kselftest: cmd.kselftest }, base);
    if (!allow) return;
    argv = [...argv, ...allow];
  }
  const logFile = join(c.runDir, `test-${arch.name}-${cmd.name}.log`);
  const activity = c.watch.begin(`command ${cmd.name}`);
  const started = Date.now();
  let last = started;
  const durations = new Map<string, number>();
  let repeats = false;
  const sink = tee(logFile, (l) => {
    // After "All error logs:" test_progs prints the failures again: they are not new results.
    if (l.startsWith("All error logs:")) repeats = true;
    const result = repeats ? undefined : liveResult(l);
    if (!result) return;
    const { test } = result;
    const now = Date.now();
    durations.set(test, now - last);
    last = now;
    // A splat belongs to the test whose result line is the first to follow it.
    activity.attribute(test);
    log(`${arch.name}: ${test} ${result.word}`);
  });
  log(`${arch.name}: running ${shellQuote(argv)} (timeout ${cmd.timeout} s)`);
  const r = await guest.ssh
    .exec(`${activity.marker}${inGuestDir(argv)}`, {
      stdout: sink.stdout,
      stderr: sink.stderr,
      timeoutMs: cmd.timeout * 1000,
      abort: activity.signal,
    })
    .finally(() => activity.end());
  await sink.done();
  // A command without an exit code may have lost its guest: who ended QEMU decides what its tests' ends mean.
  if (r.code === null) await guest.settle();
  run.timings[`command:${cmd.name}`] = (Date.now() - started) / 1000;
  const output = readFileSync(logFile, "utf8");
  let parsed = parseOutput(cmd.parser, cmd.name, r.code, output);
  const measured = parseMeasures(output);
  const stuck = c.watch.stuck;
  // When khil stopped it, the signal is khil's: the cause is why khil did.
  const died =
    tp &&
    (r.timedOut
      ? stopped.atDeadline(cmd)
      : r.aborted && stuck
        ? stopped.afterStuck(stuck)
        : deathCause(r.code, r.signal));
  if (tp && died) parsed = diedWhileRunning(parsed, tp.toRun, died);
  else if (tp) {
    if (tp.json && !r.timedOut) {
      const j = await guest.ssh.capture(`cat ${JSON_SUMMARY}`).catch(() => undefined);
      if (j?.code === 0) {
        writeFileSync(join(c.runDir, `test-${arch.name}-${cmd.name}.json`), j.out);
        parsed = withJsonSummary(parsed, j.out);
      } else parsed.problems.push("test_progs wrote no JSON summary");
    }
    parsed.problems.push(...exitCodeProblems(r.code, parsed));
  } else if (cmd.parser === "ktap" && !r.timedOut && !r.aborted) {
    const exit = ktapExitProblems(cmd.name, r.code, parsed);
    parsed.problems.push(...exit.problems);
    if (exit.harness.length) run.harness = [...(run.harness ?? []), ...exit.harness];
  }
  if (r.timedOut) parsed.problems.push(stopped.timeoutProblem(cmd));
  else if (r.aborted && stuck) parsed.problems.push(stopped.stuckProblem(cmd, stuck));
  else if (r.code === null)
    parsed.problems.push(`command ${cmd.name} ended without an exit code (${r.signal ?? "connection lost"})`);
  run.problems.push(...parsed.problems, ...measured.problems);
  if (!r.timedOut && !stuck) await rerunTests(c, cmd, parsed.tests, logFile);
  const cut = c.interruption?.() !== undefined;
  recordParsed(run, base, parsed.tests, measured.measures, c.suite.bounds, durations, cut);
  // The console can lose what dmesg keeps (a loglevel, a full buffer): look there too, and at what the
  // kernel counted itself.
  await c.watch.readDmesg(guest, c.runDir);
  await c.watch.readBookkeeping(guest);
}
