/**
 * KTAP (v1) and the TAP 13 of kselftest, read as kunit_tool's kunit_parser.py reads them: a tree of tests
 * whose subtests come before their parent's result line, nested by indentation (KTAP) or by the `# ` that
 * kselftest's runner puts before every line of a test program's own TAP. Plans are checked: a planned
 * result that never came is `notrun`, one more than planned is a problem, and output that ends inside a
 * test (a crash, a kill, a deadline) names that test.
 */
import { excerpt, type ParsedRun, type ParsedTest, type TestVerdict } from "./types.ts";

const VERSION = /^(KTAP version \d+|TAP version \d+)\s*$/;
const PLAN = /^1\.\.(\d+)/;
const RESULT = /^(not ok|ok)\s+(\d+)\b(?:\s*-)?\s*([^#]*?)\s*(?:#\s*(.*))?$/;
const SUBTEST = /^# Subtest: (.+)$/;
/** kselftest's runner names each program before its output: `# selftests: timers: posix_timers`. */
const RUNNER_NAME = /^# selftests: [^:]+: (\S+)/;
const RUNNER_PREFIX = /^selftests: [^:]+: /;

interface Node {
  name: string;
  /** Printed without a name (`ok 3 # SKIP why`), as ksft_exit_skip() and ksft_test_result_skip() do. */
  unnamed?: boolean;
  number?: number;
  verdict: TestVerdict;
  reason?: string;
  log: string[];
  children: Node[];
}

interface Frame {
  depth: number;
  /** Opened by a version line, a plan or a `# Subtest:` (not only implied by a result's depth). */
  headed?: boolean;
  plan?: number;
  /** What this frame's results will be subtests of, as far as the output has named it yet. */
  name?: string;
  results: Node[];
  log: string[];
}

/**
 * One line's nesting depth and what it says once the indentation and the runner's prefixes are gone: under
 * kselftest's runner `# ok 1 x` is a result one level down and `# # text` a diagnostic one level down, while
 * `# text` stays a diagnostic where it is.
 */
export function lineDepth(line: string): { depth: number; text: string; prefixed?: boolean } {
  const indent = /^\s*/.exec(line)?.[0].replace(/\t/g, "        ").length ?? 0;
  const depth = Math.floor(indent / 4);
  const text = line.trim();
  const prefixes = /^(?:#\s)+/.exec(text)?.[0] ?? "";
  const k = (prefixes.match(/#/g) ?? []).length;
  const rest = text.slice(prefixes.length).trimStart();
  if (k && (VERSION.test(rest) || PLAN.test(rest) || RESULT.test(rest)))
    return { depth: depth + k, text: rest, prefixed: true };
  if (k >= 2) return { depth: depth + k - 1, text: `# ${rest}` };
  return { depth, text };
}

/** A result line's directive: SKIP, TODO, XFAIL, TIMEOUT, or kselftest's `exit=N`. */
function judge(status: string, directive: string | undefined): { verdict: TestVerdict; reason?: string } {
  const d = (directive ?? "").trim();
  const word = /^(\w+)\b:?\s*(.*)$/.exec(d);
  const kind = word?.[1]?.toUpperCase();
  const rest = word?.[2]?.trim();
  if (kind === "SKIP") return { verdict: "skip", ...(rest ? { reason: rest } : {}) };
  if (kind === "TODO") return { verdict: "skip", reason: `TODO${rest ? `: ${rest}` : ""}` };
  if (kind === "XFAIL") return { verdict: "pass", reason: `expected failure${rest ? `: ${rest}` : ""}` };
  if (kind === "TIMEOUT") return { verdict: "fail", reason: `timeout${rest ? ` after ${rest}` : ""}` };
  const exit = /^exit=(\d+)/.exec(d);
  if (exit && status === "not ok") return { verdict: "fail", reason: `exit code ${exit[1]}` };
  // Any other text after a failure's `#` says why it failed (khil's probes put their first failure there).
  if (status === "not ok" && d) return { verdict: "fail", reason: d };
  return { verdict: status === "ok" ? "pass" : "fail" };
}

export function parseKtap(text: string): ParsedRun {
  const problems: string[] = [];
  const stack: Frame[] = [{ depth: 0, results: [], log: [] }];
  const top = () => stack[stack.length - 1] as Frame;
  const frameAt = (depth: number): Frame => {
    while (top().depth > depth) closeFrame(`the output went on at a lower level before its parent's result`);
    if (top().depth < depth) stack.push({ depth, results: [], log: [] });
    return top();
  };
  // A frame closed without its parent's result line: its results are kept under the name it had.
  const closeFrame = (why: string) => {
    const f = stack.pop() as Frame;
    const parent = top();
    const node: Node = {
      name: f.name ?? `#${parent.results.length + 1}`,
      verdict: "fail",
      reason: why,
      log: f.log,
      children: planned(f),
    };
    parent.results.push(node);
  };
  const planned = (f: Frame): Node[] => {
    const out = [...f.results];
    if (f.plan === undefined) return out;
    if (out.length > f.plan)
      problems.push(`${f.name ?? "the run"}: plan says 1..${f.plan}, ${out.length} results were printed`);
    // kselftest's ksft_exit_skip() after a plan prints one `ok N # SKIP why` and exits: the rest skipped too.
    const last = out.at(-1);
    const skippedRest = last?.verdict === "skip" && last.unnamed === true && last.number === out.length;
    for (let n = out.length + 1; n <= f.plan; n++)
      out.push({
        name: `#${n}`,
        verdict: skippedRest ? "skip" : "notrun",
        reason: skippedRest
          ? `the program skipped the rest after #${out.length}${last?.reason ? `: ${last.reason}` : ""}`
          : "planned, but no result was printed",
        log: [],
        children: [],
      });
    return out;
  };

  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  // What a program prints before its version line is no result of it (kunit_parser.py skips it too).
  const first = lines.findIndex((l) => VERSION.test(lineDepth(l).text));
  if (first > 0)
    (stack[0] as Frame).log.push(
      ...lines
        .splice(0, first)
        .filter((l) => l.trim())
        .map((l) => l.trim()),
    );
  for (const line of lines) {
    if (!line.trim()) continue;
    const { depth, text: t, prefixed } = lineDepth(line);
    if (VERSION.test(t)) {
      frameAt(depth).headed = true;
      continue;
    }
    const plan = PLAN.exec(t);
    if (plan) {
      const f = frameAt(depth);
      f.plan = Number(plan[1]);
      f.headed = true;
      continue;
    }
    const sub = SUBTEST.exec(t);
    if (sub?.[1]) {
      const f = frameAt(depth);
      f.name = sub[1].trim();
      f.headed = true;
      continue;
    }
    const runner = RUNNER_NAME.exec(t);
    if (runner?.[1] && depth === 0) {
      while (top().depth > 0) closeFrame("its output ended without a result line");
      stack.push({ depth: 1, name: runner[1], results: [], log: [] });
      continue;
    }
    // `# ok 5 timers armed` is a diagnostic, unless a nested KTAP (a version, a plan) was opened at its depth:
    // kselftest's runner prefixes every line of a program's own KTAP with `# `.
    const r = prefixed && !stack.some((f) => f.depth === depth && f.headed) ? null : RESULT.exec(t);
    if (!r) {
      // A diagnostic never closes a test: under the runner, a program's own lines come without a depth.
      (top().depth >= depth ? top() : frameAt(depth)).log.push(t.replace(/^# ?/, ""));
      continue;
    }
    const [, status = "", number = "", rawName = "", directive] = r;
    const judged = judge(status, directive);
    // kselftest's ksft_test_result_skip() prints `ok 3 # SKIP <name>`: the message names the test.
    const name =
      rawName.trim().replace(RUNNER_PREFIX, "") || judged.reason?.replace(/^\w+: /, "") || `#${number}`;
    while (top().depth > depth + 1) closeFrame("its output ended without a result line");
    const children = top().depth === depth + 1 ? (stack.pop() as Frame) : undefined;
    const here = frameAt(depth);
    if (Number(number) !== here.results.length + 1)
      problems.push(
        `${here.name ?? "the run"}: result ${number} (${name}) out of sequence, #${here.results.length + 1} expected`,
      );
    const node: Node = {
      name,
      ...(rawName.trim() ? {} : { unnamed: true }),
      number: Number(number),
      ...judged,
      log: [...(children?.log ?? []), ...here.log],
      children: children ? planned(children) : [],
    };
    here.log = [];
    here.results.push(node);
  }
  // What is still open when the output ends ran last: it crashed or was stopped.
  while (stack.length > 1) {
    const running = top().name;
    closeFrame("the output ends while it ran (crashed, killed or stopped)");
    problems.push(`the output ends inside ${running ?? "a test"}: it crashed, was killed or stopped`);
  }
  const root = top();
  const results = planned(root);
  const skippedRest = results.at(-1)?.reason?.startsWith("the program skipped the rest") ?? false;
  if (root.plan !== undefined && root.results.length < root.plan && !skippedRest)
    problems.push(`the output ends after ${root.results.length} of ${root.plan} planned results`);
  const tests: ParsedTest[] = [];
  const flatten = (n: Node, path: string[]) => {
    for (const c of n.children) flatten(c, [...path, n.name]);
    const [test, ...rest] = [...path, n.name];
    const t: ParsedTest = {
      test: test ?? n.name,
      verdict: n.verdict,
      log: n.verdict === "pass" && !n.reason ? "" : excerpt(n.log),
    };
    if (rest.length) t.subtest = rest.join("/");
    // kselftest's runner says `# SKIP` alone: the program's last words said why.
    const said = n.log.filter((l) => l.trim() && !/^timeout set to /.test(l)).pop();
    const reason = n.reason ?? (n.verdict === "skip" ? said?.trim() : undefined);
    if (reason) t.reason = reason;
    tests.push(t);
  };
  for (const n of results) flatten(n, []);
  return { tests, problems };
}

/**
 * What a KTAP command's exit says that its output does not. No result at all fails the run: an empty output is
 * never an empty pass. Exit 126/127 with nothing printed (the shell could not run it: a binary or library
 * missing from the guest) is khil's packaging, not the kernel's: a harness fault. A crash before the plan, or a
 * signal at any time, is a problem, and so is a failing exit after nothing but passes. Exit 255 is ssh's own
 * (the connection failed), not a signal.
 */
export function ktapExitProblems(
  command: string,
  code: number | null,
  run: ParsedRun,
): { problems: string[]; harness: string[] } {
  const how = code === null ? "no exit code" : `exit code ${code}`;
  if (run.tests.length === 0 && (code === 126 || code === 127))
    return { problems: [], harness: [`${command} could not be run in the guest (${how}): see its log`] };
  if (run.tests.length === 0)
    return { problems: [`${command} printed no KTAP results (${how})`], harness: [] };
  if (code !== null && code > 128 && code < 255)
    return { problems: [`${command} was killed by signal ${code - 128} (${how})`], harness: [] };
  // A program that says every test passed and still exits with a failure contradicts itself; skips are
  // left out, since kselftest programs and runners exit with KSFT_SKIP (4) or 1 around them.
  if (code !== null && code !== 0 && code !== 255 && run.tests.every((t) => t.verdict === "pass"))
    return {
      problems: [`${command} reported only passing results but exited with code ${code}`],
      harness: [],
    };
  return { problems: [], harness: [] };
}
