import { createHash } from "node:crypto";
import { appendFileSync, createWriteStream, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { Writable } from "node:stream";
import type { Arch } from "../arch/arch.ts";
import { InfraError, KhilError } from "../common/errors.ts";
import { lineSplitter } from "../common/lines.ts";
import { log } from "../common/log.ts";
import type { AccelChoice } from "../guest/accel.ts";
import { FACTS_SCRIPT, parseFacts } from "../guest/facts.ts";
import type { Guest } from "../guest/guest.ts";
import { shellQuote } from "../guest/ssh.ts";
import type { KernelBuild } from "../kernel/kbuild.ts";
import { parseExitCode } from "../parse/exit-code.ts";
import { parseKtap } from "../parse/ktap.ts";
import { findSplats, type Splat, SplatDetector, STUCK_KINDS } from "../parse/splats.ts";
import { parseTestProgs, parseTestProgsJson, reconcile } from "../parse/test-progs.ts";
import type { ParsedRun, ParsedTest } from "../parse/types.ts";
import type { ArchRun, GuestFacts, SplatRecord, TestRecord } from "../report/results.ts";
import { globToRegExp, matchesAny } from "../selftests/plan.ts";
import { denyReason, type Selection, type Suite } from "./suite.ts";

export const GUEST_DIR = "/root/khil";
/** Commands run in the directory files are pushed to, which exists even for a suite that pushes nothing. */
const IN_GUEST_DIR = `mkdir -p ${GUEST_DIR} && cd ${GUEST_DIR} && `;

/**
 * ccache's base directory turns the kernel's source paths into ones relative to the build directory
 * (`../../trees/linux/kernel/bpf/helpers.c`): report them relative to the tree, as the kernel would.
 */
function splatRecord(
  s: Splat,
  during: string,
  source: SplatRecord["source"],
  build: KernelBuild,
): SplatRecord {
  const prefix = `${relative(build.buildDir, build.tree)}/`;
  const strip = (t: string) => t.split(prefix).join("");
  const rec: SplatRecord = { kind: s.kind, title: strip(s.title), excerpt: strip(s.excerpt), during, source };
  if (s.location) rec.location = strip(s.location);
  return rec;
}
const JSON_SUMMARY = "/tmp/khil-summary.json";

export async function readGuestFacts(
  guest: Guest,
  build: KernelBuild,
  accel: AccelChoice,
): Promise<{ facts: GuestFacts; problems: string[] }> {
  const r = await guest.ssh.capture(FACTS_SCRIPT);
  const raw = parseFacts(r.out);
  const problems: string[] = [];
  const ourSha = createHash("sha256").update(readFileSync(build.config)).digest("hex");
  if (raw.configSha256 && raw.configSha256 !== ourSha)
    problems.push("the guest's /proc/config.gz is not the config khil built: it booted another kernel");
  if (raw.release !== build.release)
    problems.push(`the guest runs ${raw.release}, khil built ${build.release}`);
  return {
    facts: {
      kernelRelease: raw.release,
      configHash: raw.configSha256 === ourSha ? build.configHash : `guest:${raw.configSha256.slice(0, 12)}`,
      arch: guest.arch.name,
      machine: raw.machine,
      accel: accel.accel,
      accelReason: accel.reason,
      bpfJitEnable: raw.jit,
      clocksource: raw.clocksource,
      hrtimerResolutionNs: raw.hrtimerResolutionNs,
      cpus: raw.cpus,
      bootSeconds: guest.bootSeconds,
    },
    problems,
  };
}

/** The files a suite pushes: its globs resolved in the selftests build directory. */
export function resolvePush(dir: string, globs: readonly string[]): string[] {
  const names = readdirSync(dir);
  const files = names.filter((n) => matchesAny(n, globs));
  const missing = globs.filter((g) => !names.some((n) => globToRegExp(g).test(n)) && !g.includes("*"));
  if (missing.length) throw new InfraError(`push: ${missing.join(", ")} not found in ${dir}`, "push");
  return files;
}

/** Lines that are test_progs results, for live progress and per-test wall time. */
const LIVE_RESULT = /^#\d+\s+(\S+):(OK|FAIL|SKIP)/;

function tee(file: string, onLine: (l: string) => void): Writable & { done: () => Promise<void> } {
  const out = createWriteStream(file, { flags: "a" });
  const split = lineSplitter(onLine);
  const w = {
    write(d: Buffer) {
      out.write(d);
      split(d);
      return true;
    },
    done: () => new Promise<void>((r) => out.end(r)),
  };
  return w as unknown as Writable & { done: () => Promise<void> };
}

export interface SuiteRunContext {
  arch: Arch;
  suite: Suite;
  selection: Selection;
  guest: Guest;
  build: KernelBuild;
  accel: AccelChoice;
  runDir: string;
  /** Failed tests are run again alone up to this many times; one that passes then is `flaky`. */
  retries: number;
}

type Command = Suite["commands"][number];

/** Time a command gets to end by itself after the kernel reported it stuck, before khil stops it. */
const STUCK_GRACE_MS = 10_000;

/** Runs the suite's commands in a booted guest whose files are pushed already. */
export async function runCommands(c: SuiteRunContext, run: ArchRun): Promise<void> {
  const cmds = c.suite.commands;
  for (const [i, cmd] of cmds.entries()) {
    const stuck = await runCommand(c, run, cmd);
    if (stuck && i < cmds.length - 1) {
      const rest = cmds.slice(i + 1).map((x) => x.name);
      run.problems.push(`the kernel reported a ${stuck.kind}: ${rest.join(", ")} not run`);
      return;
    }
  }
}

/** Runs one command and records its tests and splats; returns the splat that left the kernel stuck. */
async function runCommand(c: SuiteRunContext, run: ArchRun, cmd: Command): Promise<Splat | undefined> {
  const { guest, suite, arch } = c;
  const kernel = c.build.release;
  const base = { arch: arch.name, kernel, accel: c.accel.accel, suite: suite.name };
  let argv = [...cmd.run];
  let jsonSummary = false;
  if (cmd.parser === "test_progs") {
    const sel = await checkSelection(c, cmd.run);
    for (const t of sel.denied)
      run.tests.push({
        ...base,
        command: cmd.name,
        test: t.test,
        verdict: "skip",
        reason: `denied: ${t.reason}`,
      });
    if (sel.toRun.length === 0) return undefined;
    argv = [...argv, "-a", sel.toRun.join(",")];
    const help = await guest.ssh.capture(`${IN_GUEST_DIR}${shellQuote(cmd.run)} --help`);
    jsonSummary = /json-summary/.test(help.out + help.err);
    if (jsonSummary) argv.push("-J", JSON_SUMMARY);
  }
  const logFile = join(c.runDir, `test-${arch.name}-${cmd.name}.log`);
  const detector = new SplatDetector();
  const pendingSplats: Splat[] = [];
  const stop = new AbortController();
  let stuck: Splat | undefined;
  let grace: NodeJS.Timeout | undefined;
  const stopWatching = guest.onLine((l) => {
    const before = detector.found.length;
    detector.feed(l);
    const s = detector.found[before];
    if (!s) return;
    pendingSplats.push(s);
    log(`${arch.name}: kernel ${s.kind} on the console: ${s.title}`);
    if (STUCK_KINDS.includes(s.kind) && !stuck) {
      stuck = s;
      grace = setTimeout(() => stop.abort(), STUCK_GRACE_MS);
    }
  });
  const started = Date.now();
  let last = started;
  const durations = new Map<string, number>();
  let repeats = false;
  const sink = tee(logFile, (l) => {
    // After "All error logs:" test_progs prints the failures again: they are not new results.
    if (l.startsWith("All error logs:")) repeats = true;
    const m = repeats ? null : LIVE_RESULT.exec(l);
    if (!m?.[1]) return;
    const now = Date.now();
    durations.set(m[1], now - last);
    last = now;
    // A splat belongs to the test whose result line is the first to follow it.
    for (const s of pendingSplats.splice(0)) run.splats.push(splatRecord(s, m[1], "console", c.build));
    log(`${arch.name}: ${m[1]} ${m[2]}`);
  });
  log(`${arch.name}: running ${shellQuote(argv)} (timeout ${cmd.timeout} s)`);
  const r = await guest.ssh.exec(`${IN_GUEST_DIR}${shellQuote(argv)} 2>&1`, {
    stdout: sink,
    timeoutMs: cmd.timeout * 1000,
    abort: stop.signal,
  });
  clearTimeout(grace);
  await sink.done();
  stopWatching();
  detector.close();
  for (const s of pendingSplats.splice(0))
    run.splats.push(splatRecord(s, `command ${cmd.name}`, "console", c.build));
  run.timings[`command:${cmd.name}`] = (Date.now() - started) / 1000;
  const output = readFileSync(logFile, "utf8");
  let parsed: ParsedRun;
  if (cmd.parser === "test_progs") {
    parsed = parseTestProgs(output);
    if (jsonSummary && !r.timedOut) {
      const j = await guest.ssh.capture(`cat ${JSON_SUMMARY}`);
      if (j.code === 0) {
        writeFileSync(join(c.runDir, `test-${arch.name}-${cmd.name}.json`), j.out);
        parsed = reconcile(parsed, parseTestProgsJson(j.out));
      } else parsed.problems.push("test_progs wrote no JSON summary");
    }
    // test_progs: 0 all passed, 1 a failure, 2 nothing matched, 3 infrastructure error
    if (r.code === 2) parsed.problems.push("test_progs: no test matched the selection");
    if (r.code === 3) parsed.problems.push("test_progs exited 3: infrastructure error (see its log)");
    if (r.code === 1 && !parsed.tests.some((t) => t.verdict === "fail"))
      parsed.problems.push("test_progs exited 1 but no failing test was parsed");
    if (r.code === 0 && parsed.tests.some((t) => t.verdict === "fail"))
      parsed.problems.push("test_progs exited 0 but failing tests were parsed");
  } else if (cmd.parser === "ktap") {
    parsed = parseKtap(output);
  } else {
    parsed = parseExitCode(cmd.name, r.code, output);
  }
  if (r.timedOut) parsed.problems.push(`timeout: command ${cmd.name} after ${cmd.timeout} s`);
  else if (r.aborted && stuck)
    parsed.problems.push(
      `stopped command ${cmd.name} ${STUCK_GRACE_MS / 1000} s after the kernel reported a ${stuck.kind}: ${stuck.title}`,
    );
  else if (r.code === null)
    parsed.problems.push(`command ${cmd.name} ended without an exit code (${r.signal ?? "connection lost"})`);
  run.problems.push(...parsed.problems);
  const settled = !r.timedOut && !stuck;
  if (cmd.parser === "test_progs" && suite.rerunSkipped && settled)
    await rerunSkipped(c, cmd, parsed.tests, suite.rerunSkipped, logFile);
  if (c.retries > 0 && settled) await retryFailed(c, cmd, parsed.tests, c.retries, logFile);
  for (const t of parsed.tests) {
    const rec: TestRecord = { ...base, command: cmd.name, test: t.test, verdict: t.verdict };
    if (t.subtest) rec.subtest = t.subtest;
    if (!t.subtest && durations.has(t.test)) rec.durationMs = durations.get(t.test);
    if (t.reason) rec.reason = t.reason;
    if (t.log) rec.log = t.log;
    run.tests.push(rec);
  }
  // The console can lose what dmesg keeps (a loglevel, a full buffer): look there too.
  const dmesg = await guest.ssh.capture("dmesg", 30_000).catch(() => undefined);
  if (dmesg) {
    writeFileSync(join(c.runDir, `dmesg-${arch.name}.log`), dmesg.out);
    const seen = new Set(run.splats.map((s) => s.title));
    for (const s of findSplats(dmesg.out)) {
      const rec = splatRecord(s, `command ${cmd.name}`, "dmesg", c.build);
      if (!seen.has(rec.title)) run.splats.push(rec);
    }
  }
  return stuck;
}

/**
 * Runs one test again by itself and returns its results (with its subtests): test_progs selects it with
 * `-a`; any other command is run again whole and the test picked from its output.
 */
async function runAlone(
  c: SuiteRunContext,
  cmd: Command,
  test: string,
  logFile: string,
  why: string,
): Promise<ParsedTest[]> {
  const argv = cmd.parser === "test_progs" ? [...cmd.run, "-a", test] : cmd.run;
  const r = await c.guest.ssh.capture(`${IN_GUEST_DIR}${shellQuote(argv)} 2>&1`, cmd.timeout * 1000);
  appendFileSync(logFile, `\n# khil: ${test} ${why}:\n${r.out}`);
  const parsed =
    cmd.parser === "test_progs"
      ? parseTestProgs(r.out)
      : cmd.parser === "ktap"
        ? parseKtap(r.out)
        : parseExitCode(cmd.name, r.code, r.out);
  return parsed.tests.filter((t) => t.test === test);
}

/** Reruns failed tests alone; one that passes on a later attempt is `flaky`, with the attempt named. */
async function retryFailed(
  c: SuiteRunContext,
  cmd: Command,
  tests: ParsedTest[],
  retries: number,
  logFile: string,
): Promise<void> {
  for (const t of tests) {
    if (t.subtest || t.verdict !== "fail") continue;
    for (let attempt = 2; attempt <= retries + 1; attempt++) {
      const again = await runAlone(c, cmd, t.test, logFile, `failed, attempt ${attempt}`);
      const top = again.find((x) => !x.subtest);
      log(`${c.arch.name}: ${t.test} failed; attempt ${attempt}: ${top?.verdict ?? "no result"}`);
      if (top?.verdict === "pass") {
        // The first attempt's log stays: it shows how the flaky test fails.
        for (const x of tests.filter((x) => x.test === t.test && x.verdict === "fail")) {
          x.verdict = "flaky";
          x.reason = `failed, then passed on attempt ${attempt}`;
        }
        break;
      }
      t.reason = `failed on all ${attempt} attempts`;
    }
  }
}

/** Reruns inconclusive skips alone; a later pass counts, with the attempts in its reason. */
async function rerunSkipped(
  c: SuiteRunContext,
  cmd: Command,
  tests: ParsedTest[],
  policy: { tests: string[]; times: number },
  logFile: string,
): Promise<void> {
  for (const t of tests) {
    if (t.subtest || t.verdict !== "skip" || !matchesAny(t.test, policy.tests)) continue;
    for (let attempt = 2; attempt <= policy.times + 1; attempt++) {
      const results = await runAlone(c, cmd, t.test, logFile, `skipped, attempt ${attempt}`);
      const again = results.find((x) => !x.subtest);
      log(`${c.arch.name}: ${t.test} skipped; attempt ${attempt}: ${again?.verdict ?? "no result"}`);
      if (again && again.verdict !== "skip") {
        t.verdict = again.verdict;
        t.log = again.log;
        t.reason = `skipped ${attempt - 1} time(s) (inconclusive), then ${again.verdict === "pass" ? "passed" : "failed"} on attempt ${attempt}`;
        break;
      }
      t.reason = `skipped on all ${attempt} attempts`;
    }
  }
}

/**
 * Checks the suite's selection against the binary's own list (`test_progs -l`): a selection that matches
 * nothing is an error, never a green run of zero tests. Denied tests are split off with their reason.
 */
async function checkSelection(c: SuiteRunContext, run: string[]) {
  const cmd = `${IN_GUEST_DIR}${shellQuote([...run, "-a", c.selection.tests.join(","), "-l"])}`;
  const r = await c.guest.ssh.capture(cmd, 120_000);
  const listed = r.out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^[A-Za-z0-9_/-]+$/.test(l));
  if (r.code !== 0 || listed.length === 0) {
    const all = await c.guest.ssh.capture(`${IN_GUEST_DIR}${shellQuote([...run, "-l"])}`, 120_000);
    const names = all.out.split("\n").filter(Boolean);
    throw new KhilError(
      `the suite's selection (${c.selection.tests.join(", ")}) matches no test in this test_progs; it has ${names.length} tests: ${names.slice(0, 30).join(", ")}${names.length > 30 ? ", ..." : ""}`,
      1,
    );
  }
  const denied = listed
    .map((test) => ({ test, reason: denyReason(c.selection, test) }))
    .filter((d): d is { test: string; reason: string } => d.reason !== undefined);
  const toRun = listed.filter((t) => !denied.some((d) => d.test === t));
  return { denied, toRun };
}
