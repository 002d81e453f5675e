import { describe, expect, it } from "vitest";
import { HOUR, khil, PROBE_JIT_CHECKS, resultsOf } from "../helpers.ts";

describe("the second supported tree, linux-source-6.1 (slow tier)", () => {
  it(
    "passes on x86_64; on arm64 the timer selftests are denied for lack of trampolines and khil's probe passes",
    async () => {
      const r = await khil(["boot-and-test", "--kernel", "6.1", "--arch", "all"]);
      expect(r.exitCode, r.all).toBe(0);
      const { results } = resultsOf(r.stdout);
      const [arm64, x86] = results.runs;
      expect(x86?.status).toBe("passed");
      for (const t of ["timer", "timer_crash", "timer_mim"])
        expect(x86?.tests.find((x) => x.test === t && !x.subtest)?.verdict).toBe("pass");
      expect(arm64?.status).toBe("passed");
      const selftests = arm64?.tests.filter((t) => t.command === "test_progs") ?? [];
      for (const t of selftests) {
        expect(t.verdict).toBe("skip");
        expect(t.reason).toMatch(/trampolines.*direct calls/);
      }
      expect(selftests.map((t) => t.test).sort()).toEqual(["timer", "timer_crash", "timer_mim"]);
      // 6.1's uapi has no bpf_timer_start flags (6.7): those two checks skip, saying so; the rest pass.
      const flags = ["never_early_abs", "pinned"];
      for (const run of [arm64, x86]) {
        const probe = run?.tests.filter((t) => t.command === "timer_probe" && t.subtest) ?? [];
        expect(probe.filter((t) => t.verdict === "pass").map((t) => t.subtest)).toEqual(
          PROBE_JIT_CHECKS.filter((c) => !flags.includes(c)),
        );
        for (const c of flags)
          expect(probe.find((t) => t.subtest === c)?.reason).toMatch(
            /^the tree's include\/uapi\/linux\/bpf.h has no BPF_F_TIMER_/,
          );
        expect(run?.measures?.map((m) => m.name)).toEqual([
          "bpf_timer_latency",
          "user_hrtimer_latency",
          "bpf_timer_excess",
        ]);
      }
    },
    2 * HOUR,
  );
});
