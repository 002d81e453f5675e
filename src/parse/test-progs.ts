import { constants } from "node:os";
import { excerpt, type ParsedRun, type ParsedTest, type TestVerdict } from "./types.ts";

const RESULT = /^#(\d+)(?:\/(\d+))?\s+(\S.*?):(OK|FAIL|SKIP)(?: \(SKIP: (\d+)\/(\d+)\))?\s*$/;
const SUMMARY = /^Summary: (\d+)\/(\d+) PASSED, (\d+) SKIPPED, (\d+) FAILED/;

const VERDICT: Record<string, TestVerdict> = { OK: "pass", FAIL: "fail", SKIP: "skip" };

/** The reason of a skip test_progs gave none for (test__skip() takes no words). */
const SELF_SKIP = "no reason given: test_progs prints a skipping test's output only with -v";

/**
 * test_progs' text output. A test's log is printed before its result line; subtests come before their test.
 * After "All error logs:" every failure is printed again, so result lines there are not counted twice.
 */
export function parseTestProgs(text: string): ParsedRun {
  const tests: ParsedTest[] = [];
  const problems: string[] = [];
  const parentName = new Map<string, string>();
  const byNumber = new Map<string, ParsedTest>();
  const pendingSub: { parent: string; t: ParsedTest }[] = [];
  let logLines: string[] = [];
  let summary: ParsedRun["summary"];
  let inErrorLogs = false;
  // test_progs' crash handler prints `Caught signal #N!` (stderr) and the running test's log and FAIL line
  // (stdout, seen after it): that FAIL line names the test that crashed. Without one (stdout lost), the first
  // selected test without a result is blamed, as for any death.
  let caught: { crashed?: string } | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (/Caught signal #\d+!/.test(line) && !caught) caught = {};
    if (line.startsWith("All error logs:")) {
      inErrorLogs = true;
      logLines = [];
      continue;
    }
    const s = SUMMARY.exec(line);
    if (s) {
      summary = { passed: Number(s[1]), skipped: Number(s[3]), failed: Number(s[4]) };
      continue;
    }
    const m = RESULT.exec(line);
    if (!m) {
      logLines.push(line);
      continue;
    }
    if (inErrorLogs) {
      // The repeat carries the full log of a failure printed earlier without one: keep the longer.
      const name = m[3] ?? "";
      const prev = tests.find((t) => (t.subtest ? `${t.test}/${t.subtest}` : t.test) === name);
      if (prev && prev.verdict === "fail" && logLines.join("\n").length > prev.log.length)
        prev.log = excerpt(logLines);
      logLines = [];
      continue;
    }
    const [, num = "", subNum, fullName = "", word = "OK", skipped, total] = m;
    const verdict = VERDICT[word] ?? "fail";
    if (subNum === undefined && verdict === "fail" && caught && !caught.crashed) caught.crashed = fullName;
    const log = verdict === "pass" ? "" : excerpt(logLines);
    logLines = [];
    // test_progs' crash handler prints the running test's result, and the test may then end and print it
    // again: one test, whose failure stands, with both logs.
    const key = subNum === undefined ? num : `${num}/${subNum}`;
    const again = byNumber.get(key);
    if (again) {
      if (verdict === "fail") again.verdict = "fail";
      again.log = [again.log, log].filter(Boolean).join("\n");
      continue;
    }
    if (subNum !== undefined) {
      const slash = fullName.indexOf("/");
      const t: ParsedTest = {
        test: "",
        subtest: slash >= 0 ? fullName.slice(slash + 1) : fullName,
        verdict,
        log,
      };
      if (slash >= 0) t.test = fullName.slice(0, slash);
      pendingSub.push({ parent: num, t });
      byNumber.set(key, t);
      tests.push(t);
    } else {
      parentName.set(num, fullName);
      const t: ParsedTest = { test: fullName, verdict, log };
      if (skipped && total) t.reason = `${skipped}/${total} subtests skipped`;
      byNumber.set(key, t);
      tests.push(t);
    }
  }
  // Old test_progs printed subtests without their test's name: take it from the test's number.
  for (const { parent, t } of pendingSub) if (!t.test) t.test = parentName.get(parent) ?? `#${parent}`;
  // Every skip has a reason: test_progs keeps a skipping test's own output (why it skipped) for -v only, and
  // lines before a SKIP here are other tests' or stray stderr, not its words.
  for (const t of tests) if (t.verdict === "skip" && !t.reason) t.reason = SELF_SKIP;
  if (summary) {
    const top = tests.filter((t) => !t.subtest);
    const failed = top.filter((t) => t.verdict === "fail").length;
    const subFailed = tests.filter((t) => t.subtest && t.verdict === "fail").length;
    // 5.15-era test_progs counted failed subtests in FAILED too.
    if (summary.failed !== failed && summary.failed !== failed + subFailed)
      problems.push(`summary says ${summary.failed} failed, ${failed} failing tests were parsed`);
    // test_progs counts a skipped test among the PASSED ones too.
    const passed = top.filter((t) => t.verdict !== "fail").length;
    if (summary.passed !== passed)
      problems.push(`summary says ${summary.passed} passed, ${passed} were parsed`);
  } else if (tests.length > 0) {
    problems.push("no Summary line: test_progs did not finish");
  }
  const crashed = caught?.crashed;
  return { tests, ...(summary ? { summary } : {}), problems, ...(crashed ? { crashed } : {}) };
}

interface JsonSummary {
  success: number;
  success_subtest: number;
  skipped: number;
  failed: number;
  results: {
    name: string;
    number: number;
    message?: string;
    failed: boolean;
    subtests?: { name: string; message?: string; failed: boolean }[];
  }[];
}

/**
 * `test_progs --json-summary` (6.4 and later). It lists only failing tests, so it serves to cross-check
 * the text output and to carry the failures' messages.
 */
export function parseTestProgsJson(text: string): { summary: ParsedRun["summary"]; failures: ParsedTest[] } {
  const j = JSON.parse(text) as JsonSummary;
  const failures: ParsedTest[] = [];
  for (const r of j.results ?? []) {
    if (r.failed) failures.push({ test: r.name, verdict: "fail", log: (r.message ?? "").trimEnd() });
    for (const s of r.subtests ?? [])
      if (s.failed)
        failures.push({ test: r.name, subtest: s.name, verdict: "fail", log: (s.message ?? "").trimEnd() });
  }
  return { summary: { passed: j.success, skipped: j.skipped, failed: j.failed }, failures };
}

/** Merges the JSON summary into the text result: any disagreement is recorded as a problem. */
export function reconcile(run: ParsedRun, json: ReturnType<typeof parseTestProgsJson>): ParsedRun {
  const problems = [...run.problems];
  const s = json.summary;
  if (run.summary && s && (run.summary.failed !== s.failed || run.summary.passed !== s.passed))
    problems.push(
      `text summary (${run.summary.passed} passed, ${run.summary.failed} failed) and JSON summary (${s.passed} passed, ${s.failed} failed) disagree`,
    );
  const tests = run.tests.map((t) => ({ ...t }));
  for (const f of json.failures) {
    const t = tests.find((x) => x.test === f.test && x.subtest === f.subtest);
    if (!t) tests.push(f);
    else if (t.verdict !== "fail")
      problems.push(
        `${f.test}${f.subtest ? `/${f.subtest}` : ""} failed in the JSON summary, not in the text`,
      );
    else if (!t.log && f.log) t.log = f.log;
  }
  return { ...run, tests, problems };
}

/** What test_progs' exit code says against what was parsed: 0 all passed, 1 a failure, 2 nothing matched, 3 infrastructure. */
export function exitCodeProblems(code: number | null, run: ParsedRun): string[] {
  const failing = run.tests.some((t) => t.verdict === "fail");
  if (code === 2) return ["test_progs: no test matched the selection"];
  if (code === 3) return ["test_progs exited 3: infrastructure error (see its log)"];
  if (code === 1 && !failing) return ["test_progs exited 1 but no failing test was parsed"];
  if (code === 0 && failing) return ["test_progs exited 0 but failing tests were parsed"];
  return [];
}

/**
 * Why test_progs ended before finishing, read from how it ended; undefined when it ended by itself. It
 * exits 0–3 on its own; anything else, or no exit code at all, means it died.
 */
export function deathCause(code: number | null, signal?: string): string | undefined {
  if (code !== null && code >= 0 && code <= 3) return undefined;
  if (code === null)
    return signal ? `was killed by SIG${signal}` : "lost its connection (the guest stopped answering)";
  const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
  return code > 128 && name ? `was killed by ${name} (exit ${code})` : `exited ${code}`;
}

/**
 * test_progs died: the first selected test without a result was running and fails with the cause; every
 * other selected test without one never ran. `selected` is in test_progs' own order (its `-l` list).
 */
export function diedWhileRunning(run: ParsedRun, selected: readonly string[], cause: string): ParsedRun {
  const done = new Set(run.tests.filter((t) => !t.subtest).map((t) => t.test));
  const left = selected.filter((t) => !done.has(t));
  // The test its crash handler named died, not the next one: its FAIL line is already there.
  if (run.crashed) return crashedIn(run, run.crashed, left, cause);
  const [running, ...never] = left;
  const tests = [...run.tests];
  if (running)
    tests.push({ test: running, verdict: "fail", log: "", reason: `test_progs ${cause} while it ran` });
  for (const t of never)
    tests.push({ test: t, verdict: "notrun", log: "", reason: `test_progs ${cause} first` });
  const what = running ? ` while ${running} ran` : "";
  return { ...run, tests, problems: [...run.problems, `test_progs ${cause}${what}${notRun(never)}`] };
}

const notRun = (never: readonly string[]) => (never.length ? `; not run: ${never.join(", ")}` : "");

function crashedIn(run: ParsedRun, crashed: string, never: readonly string[], cause: string): ParsedRun {
  const tests = run.tests.map((t) =>
    t.test === crashed && !t.subtest
      ? { ...t, verdict: "fail" as const, reason: `test_progs ${cause} in it (its crash handler said so)` }
      : t,
  );
  for (const t of never)
    tests.push({ test: t, verdict: "notrun", log: "", reason: `test_progs ${cause} first` });
  return {
    ...run,
    tests,
    problems: [...run.problems, `test_progs ${cause} in ${crashed}${notRun(never)}`],
  };
}

/** The JSON summary merged in, or a recorded problem when it cannot be read: never an aborted run. */
export function withJsonSummary(run: ParsedRun, json: string): ParsedRun {
  try {
    return reconcile(run, parseTestProgsJson(json));
  } catch (e) {
    return {
      ...run,
      problems: [...run.problems, `test_progs' JSON summary is malformed: ${(e as Error).message}`],
    };
  }
}
