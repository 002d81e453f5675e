import { KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { type CliSelection, type Command, inGuestDir, type SuiteRunContext } from "./context.ts";
import { denyReason, type Selection } from "./suite.ts";

/** A test the deny lists took, or one subtest of a test that runs (`bpf_cookie/multi_kprobe_link_api`). */
export interface Denied {
  test: string;
  subtest?: string;
  reason: string;
}

export interface CheckedSelection {
  denied: Denied[];
  /** The tests that will run, in test_progs' own order. */
  toRun: string[];
  /** test_progs' `-a` list: the tests to run, or `test/subtest` where the selection names subtests. */
  allow: string[];
  /** test_progs' `-d` list: the denied subtests of tests that run (a denied whole test is not in `allow`). */
  deny: string[];
}

/** test_progs' selection arguments: `-a` the tests to run, `-d` their denied subtests. */
export function testProgsSelectionArgs(sel: Pick<CheckedSelection, "allow" | "deny">): string[] {
  return ["-a", sel.allow.join(","), ...(sel.deny.length ? ["-d", sel.deny.join(",")] : [])];
}

/**
 * `-a` patterns for the tests to run: a selection naming a subtest (`timer_crash/hash`) keeps its subtest
 * part, so that only that subtest runs, not its whole test.
 */
export function allowList(selection: readonly string[], toRun: readonly string[]): string[] {
  const out = new Set<string>();
  for (const p of selection) {
    const slash = p.indexOf("/");
    const testGlob = slash < 0 ? p : p.slice(0, slash);
    for (const t of toRun) if (matchesAny(t, [testGlob])) out.add(slash < 0 ? t : `${t}${p.slice(slash)}`);
  }
  return [...out];
}

/** The subtests of `test` the deny lists take (`test/subtest` entries), each once, the first reason winning. */
export function deniedSubtests(selection: Selection, test: string): Denied[] {
  const out: Denied[] = [];
  for (const d of selection.denied) {
    const slash = d.pattern.indexOf("/");
    if (slash < 0 || !matchesAny(test, [d.pattern.slice(0, slash)])) continue;
    const subtest = d.pattern.slice(slash + 1);
    if (!out.some((p) => p.subtest === subtest)) out.push({ test, subtest, reason: d.reason });
  }
  return out;
}

/**
 * The listed tests the deny lists take, with the reason, and the ones left to run; with `subtests` (test_progs,
 * which takes `-d test/subtest`), also the denied subtests of those that run. The first entry naming a test
 * or subtest gives its reason: the suite's own come before the tree's.
 */
export function splitDenied(
  selection: Selection,
  listed: readonly string[],
  subtests = false,
): Omit<CheckedSelection, "allow"> {
  const whole = listed
    .map((test) => ({ test, reason: denyReason(selection, test) }))
    .filter((d): d is { test: string; reason: string } => d.reason !== undefined);
  const toRun = listed.filter((t) => !whole.some((d) => d.test === t));
  const parts = subtests ? toRun.flatMap((t) => deniedSubtests(selection, t)) : [];
  return { denied: [...whole, ...parts], toRun, deny: parts.map((p) => `${p.test}/${p.subtest}`) };
}

/**
 * The checked selection of test_progs: `-a` for the tests to run, and where the selection named only
 * subtests of a test that are all denied, that test denied as a whole (test_progs would print it as OK
 * having run nothing of it).
 */
export function testProgsSelection(
  split: Omit<CheckedSelection, "allow">,
  selection: readonly string[],
): CheckedSelection {
  const allow = allowList(selection, split.toRun).filter((a) => !split.deny.includes(a));
  const emptied = split.toRun.filter((t) => !allow.some((a) => a === t || a.startsWith(`${t}/`)));
  const gone = (t: string) => emptied.includes(t);
  return {
    denied: [
      ...split.denied.filter((d) => !gone(d.test)),
      ...emptied.map((test) => ({
        test,
        reason: split.denied.find((d) => d.test === test)?.reason ?? "every selected subtest is denied",
      })),
    ],
    toRun: split.toRun.filter((t) => !gone(t)),
    allow,
    deny: split.deny.filter((d) => !emptied.some((t) => d.startsWith(`${t}/`))),
  };
}

/**
 * Checks the suite's selection against the binary's own list (`test_progs -l`): a selection that matches
 * nothing is an error, never a green run of zero tests. Denied tests are split off with their reason.
 */
export async function checkSelection(
  c: SuiteRunContext,
  run: string[],
  tests: readonly string[],
): Promise<CheckedSelection> {
  const r = await c.guest.ssh.capture(inGuestDir([...run, "-a", tests.join(","), "-l"]), 120_000);
  // A selection of subtests lists their tests; test names are what verdicts and denials are about.
  const listed = [
    ...new Set(
      r.out
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => /^[A-Za-z0-9_/-]+$/.test(l))
        .map((l) => l.split("/")[0] ?? l),
    ),
  ];
  if (r.code !== 0 || listed.length === 0) {
    const all = await c.guest.ssh.capture(inGuestDir([...run, "-l"]), 120_000);
    const names = all.out.split("\n").filter(Boolean);
    throw new KhilError(
      `the suite's selection (${tests.join(", ")}) matches no test in this test_progs; it has ${names.length} tests: ${names.slice(0, 30).join(", ")}${names.length > 30 ? ", ..." : ""}`,
      1,
    );
  }
  return testProgsSelection(splitDenied(c.selection, listed, true), tests);
}

/**
 * The same for a kselftest target, against its runner's own list (`run_kselftest.sh -l`, entries
 * `target:test`): the runner's `-t` arguments for the tests to run.
 */
export async function checkKselftestSelection(
  c: SuiteRunContext,
  run: string[],
  target: string,
  tests: readonly string[],
): Promise<CheckedSelection> {
  const r = await c.guest.ssh.capture(inGuestDir([...run, "-l"]), 120_000);
  const names = r.out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${target}:`))
    .map((l) => l.slice(target.length + 1));
  const listed = names.filter((n) => matchesAny(n, tests));
  if (listed.length === 0)
    throw new KhilError(
      `the selection (${tests.join(", ")}) matches no test of kselftest ${target}; it has ${names.length} tests: ${names.join(", ") || `none (${r.err.trim() || r.out.trim()})`}`,
      1,
    );
  const split = splitDenied(c.selection, listed);
  return { ...split, allow: split.toRun.flatMap((t) => ["-t", `${target}:${t}`]) };
}

/**
 * A pattern whose test part matches a `subtestArgs` command's test goes to that command, its subtest part
 * (if any) as an argument; it stays in the suite's selection too unless it named that test literally.
 */
export function splitCliTests(commands: readonly Command[], patterns: readonly string[]): CliSelection {
  const args = new Map<string, string[]>();
  const suite: string[] = [];
  for (const p of patterns) {
    const slash = p.indexOf("/");
    const test = slash < 0 ? p : p.slice(0, slash);
    let literal = false;
    for (const cmd of commands.filter((c) => c.subtestArgs)) {
      const names = (cmd.tests ?? []).filter((n) => matchesAny(n, [test]));
      if (!names.length) continue;
      literal ||= names.includes(test);
      const list = args.get(cmd.name) ?? [];
      // A pattern without a subtest part selects every subtest: no arguments at all.
      if (slash < 0 || (list.length === 0 && args.has(cmd.name))) args.set(cmd.name, []);
      else args.set(cmd.name, [...list, p.slice(slash + 1)]);
    }
    if (!literal) suite.push(p);
  }
  return { suite, args };
}
