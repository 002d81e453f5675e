import { appendFileSync } from "node:fs";
import { matchesAny } from "../common/glob.ts";
import { log } from "../common/log.ts";
import { parseOutput } from "../parse/dispatch.ts";
import type { ParsedTest } from "../parse/types.ts";
import { type Command, commandArgv, inGuestDir, type SuiteRunContext } from "./context.ts";
import { deniedSubtests, testProgsSelectionArgs } from "./selection.ts";
import type { Suite } from "./suite.ts";

/**
 * Runs one test again by itself and returns its results (with its subtests): test_progs selects it with
 * `-a`; any other command is run again whole and the test picked from its output. The kernel is watched
 * as for the first run: a lockup stops the rerun too.
 */
async function runAlone(
  c: SuiteRunContext,
  cmd: Command,
  test: string,
  logFile: string,
  why: string,
): Promise<ParsedTest[]> {
  // A test run again keeps its denied subtests out, as its first run did.
  const deny = deniedSubtests(c.selection, test).map((d) => `${test}/${d.subtest}`);
  const argv = commandArgv(
    cmd,
    cmd.parser === "test_progs"
      ? testProgsSelectionArgs({ allow: [test], deny })
      : cmd.kselftest !== undefined
        ? ["-t", `${cmd.kselftest}:${test}`]
        : [],
  );
  const fresh = await c.freshGuest?.();
  if (fresh && "reason" in fresh)
    log(`${c.arch.name}: ${test} runs again in the same guest: ${fresh.reason}`);
  const guest = fresh && "guest" in fresh ? fresh.guest : c.guest;
  const where = guest === c.guest ? "" : " in a fresh guest restored from the snapshot";
  const activity = c.watch.begin(`${test} (${why})`);
  const r = await guest.ssh
    .capture(`${activity.marker}${inGuestDir(argv)}`, cmd.timeout * 1000, activity.signal)
    .finally(async () => {
      activity.end();
      if (guest !== c.guest) await guest.stop();
    });
  // The two streams apart, stderr after stdout: merged in the guest, a child's stderr could split a result line.
  const out = [r.out, r.err].filter(Boolean).join(r.out.endsWith("\n") ? "" : "\n");
  appendFileSync(logFile, `\n# khil: ${test} ${why}${where}:\n${out}`);
  return parseOutput(cmd.parser, cmd.name, r.code, out).tests.filter((t) => t.test === test);
}

interface RerunPolicy {
  /** The verdict that earns a rerun, and how many more attempts it gets. */
  from: "fail" | "skip";
  times: number;
  selects: (test: string) => boolean;
  /** Whether a later attempt settles the test, and how it is then recorded. */
  settles: (again: ParsedTest) => boolean;
  settle: (t: ParsedTest, again: ParsedTest, attempt: number) => void;
}

/** Where a test runs again alone: a guest over SSH, or the part of a LAVA job that did it already. */
export interface Rerunner {
  arch: string;
  alone: (test: string, why: string) => Promise<ParsedTest[]>;
  stuck: () => boolean;
}

/** What a rerun is called, in the log and in the LAVA job's markers: `skipped, attempt 2`. */
export function rerunWhy(from: "fail" | "skip", attempt: number | string): string {
  return `${from === "fail" ? "failed" : "skipped"}, attempt ${attempt}`;
}

async function rerun(r: Rerunner, tests: ParsedTest[], p: RerunPolicy): Promise<void> {
  const word = p.from === "fail" ? "failed" : "skipped";
  for (const t of tests) {
    if (t.subtest || t.verdict !== p.from || !p.selects(t.test)) continue;
    for (let attempt = 2; attempt <= p.times + 1 && !r.stuck(); attempt++) {
      const results = await r.alone(t.test, rerunWhy(p.from, attempt));
      const again = results.find((x) => !x.subtest);
      log(`${r.arch}: ${t.test} ${word}; attempt ${attempt}: ${again?.verdict ?? "no result"}`);
      if (again && p.settles(again)) {
        p.settle(t, again, attempt);
        break;
      }
      if (attempt === 2) t.firstReason = t.reason ?? "";
      t.reason = `${word} on all ${attempt} attempts`;
    }
  }
}

/**
 * The suite's inconclusive skips run again alone (a later pass or failure counts, with the attempts in its
 * reason), then failed tests up to `--retries` times (one that passes later is `flaky`, its first log kept).
 */
export async function rerunTests(
  c: SuiteRunContext,
  cmd: Command,
  tests: ParsedTest[],
  logFile: string,
): Promise<void> {
  const r: Rerunner = {
    arch: c.arch.name,
    alone: (test, why) => runAlone(c, cmd, test, logFile, why),
    stuck: () => Boolean(c.watch.stuck),
  };
  if (cmd.parser === "test_progs") await rerunSkips(r, c.suite, tests);
  if (c.retries > 0)
    await rerun(r, tests, {
      from: "fail",
      times: c.retries,
      selects: () => true,
      settles: (again) => again.verdict === "pass",
      settle: (t, _again, attempt) => {
        for (const x of tests.filter((x) => x.test === t.test && x.verdict === "fail")) {
          x.verdict = "flaky";
          x.firstReason ??= x.reason ?? "";
          x.reason = `failed, then passed on attempt ${attempt}`;
        }
      },
    });
}

/** The suite's inconclusive skips (`rerunSkipped`), each run again alone: a later pass or failure counts. */
export async function rerunSkips(r: Rerunner, suite: Suite, tests: ParsedTest[]): Promise<void> {
  const skips = suite.rerunSkipped;
  if (!skips) return;
  await rerun(r, tests, {
    from: "skip",
    times: skips.times,
    selects: (test) => matchesAny(test, skips.tests),
    settles: (again) => again.verdict !== "skip",
    settle: (t, again, attempt) => {
      t.verdict = again.verdict;
      t.log = again.log;
      t.reason = `skipped ${attempt - 1} time(s) (inconclusive), then ${again.verdict === "pass" ? "passed" : "failed"} on attempt ${attempt}`;
    },
  });
}
