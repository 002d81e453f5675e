import { appendFileSync } from "node:fs";
import { matchesAny } from "../common/glob.ts";
import { log } from "../common/log.ts";
import { parseOutput } from "../parse/dispatch.ts";
import type { ParsedTest } from "../parse/types.ts";
import { type Command, commandArgv, inGuestDir, type SuiteRunContext } from "./context.ts";

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
  const argv = commandArgv(
    cmd,
    cmd.parser === "test_progs"
      ? ["-a", test]
      : cmd.kselftest !== undefined
        ? ["-t", `${cmd.kselftest}:${test}`]
        : [],
  );
  const activity = c.watch.begin(`${test} (${why})`);
  const r = await c.guest.ssh
    .capture(`${activity.marker}${inGuestDir(argv)} 2>&1`, cmd.timeout * 1000, activity.signal)
    .finally(() => activity.end());
  appendFileSync(logFile, `\n# khil: ${test} ${why}:\n${r.out}`);
  return parseOutput(cmd.parser, cmd.name, r.code, r.out).tests.filter((t) => t.test === test);
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

async function rerun(
  c: SuiteRunContext,
  cmd: Command,
  tests: ParsedTest[],
  logFile: string,
  p: RerunPolicy,
): Promise<void> {
  const word = p.from === "fail" ? "failed" : "skipped";
  for (const t of tests) {
    if (t.subtest || t.verdict !== p.from || !p.selects(t.test)) continue;
    for (let attempt = 2; attempt <= p.times + 1 && !c.watch.stuck; attempt++) {
      const results = await runAlone(c, cmd, t.test, logFile, `${word}, attempt ${attempt}`);
      const again = results.find((x) => !x.subtest);
      log(`${c.arch.name}: ${t.test} ${word}; attempt ${attempt}: ${again?.verdict ?? "no result"}`);
      if (again && p.settles(again)) {
        p.settle(t, again, attempt);
        break;
      }
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
  const skips = c.suite.rerunSkipped;
  if (cmd.parser === "test_progs" && skips)
    await rerun(c, cmd, tests, logFile, {
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
  if (c.retries > 0)
    await rerun(c, cmd, tests, logFile, {
      from: "fail",
      times: c.retries,
      selects: () => true,
      settles: (again) => again.verdict === "pass",
      settle: (t, _again, attempt) => {
        for (const x of tests.filter((x) => x.test === t.test && x.verdict === "fail")) {
          x.verdict = "flaky";
          x.reason = `failed, then passed on attempt ${attempt}`;
        }
      },
    });
}
