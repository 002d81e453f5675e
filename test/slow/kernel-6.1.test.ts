import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

describe("the second supported tree, linux-source-6.1 (slow tier)", () => {
  it(
    "passes on x86_64 and reports the arm64 timer tests as skipped for lack of trampolines",
    async () => {
      const r = await khil(["boot-and-test", "--kernel", "6.1", "--arch", "all"]);
      expect(r.exitCode, r.all).toBe(0);
      const { results } = resultsOf(r.stdout);
      const [arm64, x86] = results.runs;
      expect(x86?.status).toBe("passed");
      for (const t of ["timer", "timer_crash", "timer_mim"])
        expect(x86?.tests.find((x) => x.test === t && !x.subtest)?.verdict).toBe("pass");
      expect(arm64?.status).toBe("skipped");
      for (const t of arm64?.tests ?? []) {
        expect(t.verdict).toBe("skip");
        expect(t.reason).toMatch(/trampolines.*direct calls/);
      }
      expect(arm64?.tests.map((t) => t.test).sort()).toEqual(["timer", "timer_crash", "timer_mim"]);
    },
    2 * HOUR,
  );
});
