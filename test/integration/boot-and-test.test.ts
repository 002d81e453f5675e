import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testName } from "../../src/report/results.ts";
import { launchChromium, openReport } from "../browser.ts";
import { HOUR, khil, PROBE_JIT_CHECKS, resultsOf, verdictOf } from "../helpers.ts";

describe("boot-and-test: the BPF timer selftests in real guests", () => {
  it(
    "passes every timer test on x86_64, arm64 and s390x (6.12), with the guest's facts recorded",
    async () => {
      const r = await khil(["boot-and-test", "--arch", "all"]);
      expect(r.exitCode, r.all).toBe(0);
      const { dir, results } = resultsOf(r.stdout);
      expect(results.runs.map((x) => x.arch)).toEqual(["arm64", "s390x", "x86_64"]);
      for (const run of results.runs) {
        expect(run.status, JSON.stringify(run.problems)).toBe("passed");
        for (const t of ["timer", "timer_crash/array", "timer_crash/hash", "timer_mim", "timer_lockup"])
          expect(verdictOf(run, t), `${run.arch} ${t}`).toBe("pass");
        // khil's own probe, after test_progs: every check but the JIT-off one, and its latency figures,
        // judged by the suite's bound (the 6.12 tree has both bpf_timer_start flags: nothing skips).
        expect(verdictOf(run, "timer_probe"), run.arch).toBe("pass");
        for (const c of PROBE_JIT_CHECKS)
          expect(verdictOf(run, `timer_probe/${c}`), `${run.arch} ${c}`).toBe("pass");
        expect(
          run.measures?.map((m) => [m.name, m.n]),
          run.arch,
        ).toEqual([
          ["bpf_timer_latency", 1000],
          ["user_hrtimer_latency", 1000],
          ["bpf_timer_excess", 1000],
        ]);
        const latency = run.tests.find((t) => testName(t) === "timer_probe/latency");
        expect(latency?.log).toMatch(
          /khil bound: bpf_timer_excess median .* within the .* allowed under (tcg|kvm)/,
        );
        expect(run.guest?.bpfJitEnable).toBe("1");
        expect(run.guest?.cpus).toBe(2);
        expect(run.guest?.hrtimerResolutionNs, run.guest?.clocksource).toBe(1);
        expect(run.guest?.kernelRelease).toMatch(/^6\.12\./);
        expect(run.guest?.configHash).not.toMatch(/^guest:/);
      }
      const junit = readFileSync(join(dir, "junit.xml"), "utf8");
      expect(junit).toContain('name="timer_crash/hash"');
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("khil: guest ready");
      // Its report.html, in a real browser: the verdict, every cell, each test's mark linking to its log,
      // three plots per arch drawn on their canvases, nothing fetched, no error.
      const browser = await launchChromium();
      try {
        const page = await openReport(browser, join(dir, "report.html"), "passing-arch-all");
        expect(page.verdict).toBe("PASSED");
        expect(page.columns).toEqual(["arm64", "s390x", "x86_64"]);
        // Per arch: the latencies side by side, and each of the suite's two bounded measures with its bound.
        expect(page.canvases).toHaveLength(9);
        expect(page.canvases.every((n) => n > 1000)).toBe(true);
        expect(page.errors).toEqual([]);
        expect(page.requests).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    2 * HOUR,
  );

  it(
    "fails a suite selection that matches no test in the built test_progs, naming the tests there are",
    async () => {
      const r = await khil([
        "boot-and-test",
        "--arch",
        "x86_64",
        "--suite",
        "test/fixtures/suites/no-such-test.yaml",
      ]);
      expect(r.exitCode).toBe(1);
      expect(r.all).toMatch(
        /selection \(no_such_test\*\) matches no test in this test_progs; it has \d+ tests: .*timer/,
      );
      const { results } = resultsOf(r.stdout);
      expect(results.runs[0]?.status).toBe("error");
    },
    HOUR,
  );

  it(
    "--test test/subtest runs that subtest only",
    async () => {
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--test", "timer_crash/hash"]);
      expect(r.exitCode, r.all).toBe(0);
      const { results } = resultsOf(r.stdout);
      expect(results.runs[0]?.tests.map(testName)).toEqual(["timer_crash/hash", "timer_crash"]);
    },
    HOUR,
  );

  it(
    "--test timer_probe/CHECK runs that check of khil's probe only, and not test_progs",
    async () => {
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--test", "timer_probe/cancel"]);
      expect(r.exitCode, r.all).toBe(0);
      const { results } = resultsOf(r.stdout);
      expect(results.runs[0]?.tests.map(testName)).toEqual(["timer_probe/cancel", "timer_probe"]);
    },
    HOUR,
  );

  it("refuses a --test that names no test of the suite before building anything", async () => {
    const r = await khil([
      "boot-and-test",
      "--arch",
      "x86_64",
      "--test",
      "timer_crash/hash",
      "--test",
      "timr*",
    ]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe(
      "khil: error: --test timr* matches no test the suite builds (prog_tests timer*): valid are timer, timer_crash, timer_lockup, timer_mim",
    );
    expect(r.stdout).not.toMatch(/^results:/m);
  });

  it("refuses a suite file with a misspelled key, naming file and line", async () => {
    const r = await khil(["boot-and-test", "--suite", "test/fixtures/suites/misspelled.yaml"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe(
      "khil: error: test/fixtures/suites/misspelled.yaml:13: commands.0.timout: unknown key 'timout'",
    );
  });
});
