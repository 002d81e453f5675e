import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ktapExitProblems, parseKtap } from "../src/parse/ktap.ts";
import { namesAndVerdicts } from "./helpers.ts";

// kselftest's timers target as kselftest's runner printed it in khil's x86_64 6.12 guests (TCG).
const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", "ktap", name), "utf8");

describe("kselftest timers, captured from a guest", () => {
  const run = parseKtap(fixture("x86_64-6.12-timers.log"));
  const top = run.tests.filter((t) => !t.subtest);
  const byName = (n: string) => run.tests.find((t) => (t.subtest ? `${t.test}/${t.subtest}` : t.test) === n);

  it("reads each program's own TAP, under the runner's '# ', as its subtests", () => {
    expect(namesAndVerdicts(top)).toEqual([
      "posix_timers:fail",
      "nanosleep:pass",
      "nsleep-lat:pass",
      "set-timer-lat:pass",
      "mqueue-lat:pass",
      "inconsistency-check:pass",
      "raw_skew:pass",
      "threadtest:pass",
      "rtcpie:skip",
    ]);
    const posix = run.tests.filter((t) => t.test === "posix_timers" && t.subtest);
    expect(posix).toHaveLength(18);
    expect(namesAndVerdicts(posix.filter((t) => t.verdict === "fail"))).toEqual([
      "posix_timers/check_sig_ign SIGEV_SIGNAL:fail",
      "posix_timers/check_rearm:fail",
      "posix_timers/check_delete:fail",
    ]);
    expect(run.problems).toEqual([]);
  });

  it("takes kselftest's exit code as the reason, and keeps the program's output as the log", () => {
    expect(byName("posix_timers")?.reason).toBe("exit code 1");
    expect(byName("posix_timers")?.log).toContain("Totals: pass:15 fail:3");
  });

  it("names a skipped subtest by its message, and a skipped program by what it said", () => {
    expect(byName("nanosleep/CLOCK_PROCESS_CPUTIME_ID")).toMatchObject({
      verdict: "skip",
      reason: "CLOCK_PROCESS_CPUTIME_ID",
    });
    expect(byName("rtcpie")?.reason).toBe("Default RTC /dev/rtc0 does not exist. Test Skipped!");
  });

  it("reads `# exit=255` of a program that refused its options", () => {
    const bad = parseKtap(fixture("x86_64-6.12-timers-bad-option.log"));
    const t = bad.tests.find((x) => x.test === "threadtest");
    expect(t).toMatchObject({ verdict: "fail", reason: "exit code 255" });
    expect(t?.log).toContain("invalid option -- 'x'");
  });

  it("names the test the output ended inside", () => {
    const cut = parseKtap(fixture("x86_64-6.12-timers-cut-short.log"));
    expect(namesAndVerdicts(cut.tests.filter((t) => !t.subtest))).toEqual([
      "nanosleep:pass",
      "inconsistency-check:fail",
    ]);
    expect(cut.tests.at(-1)?.reason).toBe("the output ends while it ran (crashed, killed or stopped)");
    expect(cut.problems).toEqual([
      "the output ends inside inconsistency-check: it crashed, was killed or stopped",
    ]);
  });
});

describe("KTAP's own forms", () => {
  it("nests by indentation to any depth, with # Subtest: names, directives and plans", () => {
    const run = parseKtap(
      [
        "KTAP version 1",
        "1..2",
        "    KTAP version 1",
        "    # Subtest: hrtimer",
        "    1..2",
        "        KTAP version 1",
        "        # Subtest: expiry",
        "        1..2",
        "        ok 1 relative",
        "        not ok 2 absolute # TIMEOUT 45 seconds",
        "    not ok 1 expiry",
        "    ok 2 cancel # XFAIL races with expiry",
        "not ok 1 hrtimer",
        "ok 2 skipped # SKIP no high-resolution timers",
      ].join("\n"),
    );
    expect(namesAndVerdicts(run.tests)).toEqual([
      "hrtimer/expiry/relative:pass",
      "hrtimer/expiry/absolute:fail",
      "hrtimer/expiry:fail",
      "hrtimer/cancel:pass",
      "hrtimer:fail",
      "skipped:skip",
    ]);
    expect(run.tests[1]?.reason).toBe("timeout after 45 seconds");
    expect(run.tests[3]?.reason).toBe("expected failure: races with expiry");
    expect(run.problems).toEqual([]);
  });
});

describe("KTAP as kunit_parser.py reads it (crafted from kselftest.h's and KTAP's formats)", () => {
  it("takes nothing before the version line for a result", () => {
    const run = parseKtap("ok 1 this is a banner, not a result\nKTAP version 1\n1..1\nok 1 real\n");
    expect(namesAndVerdicts(run.tests)).toEqual(["real:pass"]);
    expect(run.problems).toEqual([]);
  });

  it("reads `# ok 5 timers armed` in a program's own output as a diagnostic, not a subtest", () => {
    const run = parseKtap("KTAP version 1\n1..1\n# ok 5 timers armed\nok 1 arm\n");
    expect(namesAndVerdicts(run.tests)).toEqual(["arm:pass"]);
  });

  it("names a result out of sequence as a problem", () => {
    const run = parseKtap("KTAP version 1\n1..3\nok 1 a\nok 3 c\nok 2 b\n");
    expect(run.problems).toEqual([
      "the run: result 3 (c) out of sequence, #2 expected",
      "the run: result 2 (b) out of sequence, #3 expected",
    ]);
  });

  it("a program that calls ksft_exit_skip after its plan skipped the rest: skipped, not failed or not run", () => {
    const run = parseKtap("TAP version 13\n1..4\nok 1 first\nok 2 # SKIP no CLOCK_TAI here\n");
    expect(namesAndVerdicts(run.tests)).toEqual([
      "first:pass",
      "no CLOCK_TAI here:skip",
      "#3:skip",
      "#4:skip",
    ]);
    expect(run.tests[2]?.reason).toBe("the program skipped the rest after #2: no CLOCK_TAI here");
    expect(run.problems).toEqual([]);
  });
});

describe("what a KTAP command's exit adds to its output", () => {
  it("a program that printed nothing fails the run; one the shell could not run (126, 127) is a harness fault", () => {
    expect(ktapExitProblems("timer_probe", 127, parseKtap("sh: ./timer_probe: not found\n"))).toEqual({
      problems: [],
      harness: ["timer_probe could not be run in the guest (exit code 127): see its log"],
    });
    expect(ktapExitProblems("timer_probe", null, parseKtap(""))).toEqual({
      problems: ["timer_probe printed no KTAP results (no exit code)"],
      harness: [],
    });
    expect(ktapExitProblems("timer_probe", 139, parseKtap("")).problems).toEqual([
      "timer_probe printed no KTAP results (exit code 139)",
    ]);
  });

  it("a signal is a problem even after some results; ssh's own 255 and a plain exit are the output's to judge", () => {
    const some = parseKtap("KTAP version 1\n1..2\nok 1 a\n");
    expect(ktapExitProblems("p", 139, some).problems).toEqual(["p was killed by signal 11 (exit code 139)"]);
    expect(ktapExitProblems("p", 1, some).problems).toEqual([]);
    expect(ktapExitProblems("p", 255, some).problems).toEqual([]);
  });

  it("a failing exit after nothing but passes contradicts the output; after a skip it is kselftest's way", () => {
    const passes = parseKtap("KTAP version 1\n1..2\nok 1 a\nok 2 b\n");
    expect(ktapExitProblems("p", 1, passes).problems).toEqual([
      "p reported only passing results but exited with code 1",
    ]);
    expect(ktapExitProblems("p", 0, passes).problems).toEqual([]);
    const skipped = parseKtap("KTAP version 1\n1..2\nok 1 a\nok 2 b # SKIP no CLOCK_TAI\n");
    expect(ktapExitProblems("p", 4, skipped).problems).toEqual([]);
  });

  it("a failure's text after `#` is its reason, so reports name why without reading the log", () => {
    const run = parseKtap(
      "KTAP version 1\n1..1\n# FAIL: 12 of 300 relative callbacks ran before their expiry\nnot ok 1 never_early # 12 of 300 relative callbacks ran before their expiry\n",
    );
    expect(run.tests[0]?.reason).toBe("12 of 300 relative callbacks ran before their expiry");
    expect(run.tests[0]?.verdict).toBe("fail");
  });
});
