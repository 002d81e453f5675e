import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

describe("suites/timers.yaml on both architectures", () => {
  it(
    "gives every timers selftest a verdict: pass, fail, skip with its reason, or denied with the suite's",
    async () => {
      const r = await khil(["boot-and-test", "--suite", "timers", "--arch", "all"]);
      const { results } = resultsOf(r.stdout);
      expect(results.runs.map((x) => x.arch).sort()).toEqual(["arm64", "x86_64"]);
      for (const run of results.runs) {
        const top = run.tests.filter((t) => !t.subtest).map((t) => t.test);
        expect(top, run.arch).toEqual([
          "posix_timers",
          "nanosleep",
          "nsleep-lat",
          "set-timer-lat",
          "mqueue-lat",
          "inconsistency-check",
          "raw_skew",
          "threadtest",
          "rtcpie",
        ]);
        for (const t of run.tests) {
          expect(["pass", "fail", "skip"], `${run.arch} ${t.test}/${t.subtest}`).toContain(t.verdict);
          if (t.verdict === "skip") expect(t.reason, `${run.arch} ${t.test}/${t.subtest}`).toBeTruthy();
        }
        expect(run.status, run.arch).toBe("passed");
      }
      expect(r.exitCode, r.all).toBe(0);
    },
    2 * HOUR,
  );
});
