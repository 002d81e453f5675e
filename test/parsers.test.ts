import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseExitCode } from "../src/parse/exit-code.ts";
import { parseKtap } from "../src/parse/ktap.ts";
import { parseTestProgs, parseTestProgsJson, reconcile } from "../src/parse/test-progs.ts";
import { namesAndVerdicts } from "./helpers.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");
const names = (run: ReturnType<typeof parseTestProgs>) => namesAndVerdicts(run.tests);

describe("test_progs output captured from khil runs", () => {
  it.each(["x86_64", "arm64"])("%s 6.12, all timer tests passing, text and JSON agreeing", (arch) => {
    const text = parseTestProgs(fixture(`test_progs/${arch}-6.12-pass.txt`));
    expect(names(text)).toEqual([
      "timer/test_bad_ret:pass",
      "timer:pass",
      "timer_crash/array:pass",
      "timer_crash/hash:pass",
      "timer_crash:pass",
      "timer_lockup:pass",
      "timer_mim:pass",
    ]);
    expect(text.summary).toEqual({ passed: 4, skipped: 0, failed: 0 });
    const both = reconcile(text, parseTestProgsJson(fixture(`test_progs/${arch}-6.12-pass.json`)));
    expect(both.problems).toEqual([]);
  });

  it("x86_64 6.12 on one CPU: timer_lockup skips itself, counted among PASSED by test_progs", () => {
    const text = parseTestProgs(fixture("test_progs/x86_64-6.12-1cpu-skip.txt"));
    expect(names(text)).toContain("timer_lockup:skip");
    expect(text.summary).toEqual({ passed: 4, skipped: 1, failed: 0 });
    expect(
      reconcile(text, parseTestProgsJson(fixture("test_progs/x86_64-6.12-1cpu-skip.json"))).problems,
    ).toEqual([]);
  });

  it("arm64 6.1 without ftrace direct calls: every timer test fails at attach, each failure counted once", () => {
    const run = parseTestProgs(fixture("test_progs/arm64-6.1-trampoline-fail.txt"));
    expect(names(run)).toEqual([
      "timer:fail",
      "timer_crash/array:fail",
      "timer_crash/hash:fail",
      "timer_crash:fail",
      "timer_mim:fail",
    ]);
    expect(run.tests[0]?.log).toContain("timer:FAIL:timer_attach unexpected error: -524 (errno 524)");
    expect(run.tests[1]?.log).toContain("timer_crash__attach unexpected error: -524");
    expect(run.problems).toEqual([]);
  });

  it("x86_64 6.1: no JSON summary, subtests named with their test", () => {
    const run = parseTestProgs(fixture("test_progs/x86_64-6.1-pass.txt"));
    expect(names(run)).toEqual([
      "timer:pass",
      "timer_crash/array:pass",
      "timer_crash/hash:pass",
      "timer_crash:pass",
      "timer_mim:pass",
    ]);
    expect(run.problems).toEqual([]);
  });

  it("a long failing log leads with its FAIL lines", () => {
    const lines = [
      "timer:FAIL:hash_cb unexpected 0",
      ...Array.from({ length: 100 }, (_, i) => `timer:PASS:check ${i} 0 nsec`),
    ];
    const run = parseTestProgs(
      [...lines, "#1       timer:FAIL", "Summary: 0/0 PASSED, 0 SKIPPED, 1 FAILED"].join("\n"),
    );
    const log = run.tests[0]?.log.split("\n") ?? [];
    expect(log[0]).toBe("timer:FAIL:hash_cb unexpected 0");
    expect(log.length).toBeLessThanOrEqual(61);
  });

  it("a run cut short (no Summary line) is a problem, never a pass", () => {
    const cut = fixture("test_progs/x86_64-6.12-pass.txt").split("\n").slice(0, 3).join("\n");
    expect(parseTestProgs(cut).problems).toEqual(["no Summary line: test_progs did not finish"]);
  });
});

describe("test_progs output formats of other kernel versions", () => {
  it("reads subtests printed without their test's name (before Aug 2021) and skip counts", () => {
    const run = parseTestProgs(
      [
        "#1/1 array:OK",
        "#1/2 hash:OK",
        "#1 timer_crash:OK (SKIP: 1/2)",
        "Summary: 1/2 PASSED, 0 SKIPPED, 0 FAILED",
      ].join("\n"),
    );
    expect(names(run)).toEqual(["timer_crash/array:pass", "timer_crash/hash:pass", "timer_crash:pass"]);
    expect(run.tests[2]?.reason).toBe("1/2 subtests skipped");
  });

  it("gives a test that skipped itself a reason, though test_progs prints none without -v", () => {
    // As bpf-full printed them (2026-12-07): reg_bounds_gen_* skip unless SLOW_TESTS is set, silently.
    const run = parseTestProgs(
      [
        "#221     reference_tracking:OK",
        "#223     reg_bounds_gen_consts_s32_s32:SKIP",
        "#107/2   fs_kfuncs/fsverity:SKIP",
        "#107     fs_kfuncs:OK (SKIP: 1/2)",
        "Summary: 3/1 PASSED, 2 SKIPPED, 0 FAILED",
      ].join("\n"),
    );
    expect(run.problems).toEqual([]);
    const reason = (n: string) =>
      run.tests.find((t) => `${t.test}${t.subtest ? `/${t.subtest}` : ""}` === n)?.reason;
    expect(reason("reg_bounds_gen_consts_s32_s32")).toBe(
      "no reason given: test_progs prints a skipping test's output only with -v",
    );
    expect(reason("fs_kfuncs/fsverity")).toMatch(/^no reason given: /);
    expect(reason("fs_kfuncs")).toBe("1/2 subtests skipped");
    expect(reason("reference_tracking")).toBeUndefined();
  });

  it("keeps a failure's log and does not count the 'All error logs' repeat", () => {
    const out = [
      "test_timer_mim:PASS:timer_mim_reject 0 nsec",
      "test_timer_mim:FAIL:load unexpected error: -22",
      "#4       timer_mim:FAIL",
      "All error logs:",
      "test_timer_mim:FAIL:load unexpected error: -22 (errno 22)",
      "#4       timer_mim:FAIL",
      "Summary: 0/0 PASSED, 0 SKIPPED, 1 FAILED",
    ].join("\n");
    const run = parseTestProgs(out);
    expect(names(run)).toEqual(["timer_mim:fail"]);
    expect(run.tests[0]?.log).toContain("load unexpected error: -22");
    expect(run.problems).toEqual([]);
  });

  it("flags a JSON summary that disagrees with the text", () => {
    const text = parseTestProgs(fixture("test_progs/x86_64-6.12-pass.txt"));
    const json = parseTestProgsJson(
      '{"success":3,"success_subtest":3,"skipped":0,"failed":1,"results":[{"name":"timer_mim","number":4,"failed":true,"message":"boom"}]}',
    );
    expect(reconcile(text, json).problems).toHaveLength(2);
  });
});

describe("KTAP and TAP", () => {
  it("reads nested results, skips with reasons, and checks the plan", () => {
    const run = parseKtap(
      [
        "KTAP version 1",
        "1..3",
        "    KTAP version 1",
        "    1..2",
        "    ok 1 nanosleep_short",
        "    not ok 2 nanosleep_long",
        "not ok 1 nanosleep",
        "# clock_adjtime unsupported",
        "ok 2 adjtick # SKIP needs CAP_SYS_TIME",
        "ok 3 posix_timers",
      ].join("\n"),
    );
    expect(names(run)).toEqual([
      "nanosleep/nanosleep_short:pass",
      "nanosleep/nanosleep_long:fail",
      "nanosleep:fail",
      "adjtick:skip",
      "posix_timers:pass",
    ]);
    expect(run.tests[3]?.reason).toBe("needs CAP_SYS_TIME");
    expect(run.problems).toEqual([]);
    const short = parseKtap("1..2\nok 1 a\n");
    expect(names(short)).toEqual(["a:pass", "#2:notrun"]);
    expect(short.problems).toEqual(["the output ends after 1 of 2 planned results"]);
    expect(parseKtap("1..1\nok 1 a\nok 2 b\n").problems).toEqual([
      "the run: plan says 1..1, 2 results were printed",
    ]);
  });
});

describe("exit-code parser", () => {
  it("passes on 0 and keeps the tail of the output otherwise", () => {
    expect(parseExitCode("c", 0, "x").tests[0]?.verdict).toBe("pass");
    expect(parseExitCode("c", 3, "a\nb").tests[0]).toEqual({ test: "c", verdict: "fail", log: "a\nb" });
  });
});
