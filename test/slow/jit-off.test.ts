import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

describe("the jit-off cells of the default matrix (slow tier: a kernel without BPF_JIT_ALWAYS_ON per arch)", () => {
  it(
    "runs with the JIT off, denies the timer selftests with the verifier's reason, and the probe sees every timer program refused",
    async () => {
      const cells = ["x86_64", "arm64"].map((a) => `${a}-6.12-bpf-timer-jit-off`);
      const r = await khil(["matrix", ...cells.flatMap((c) => ["--cell", c])]);
      expect(r.exitCode, r.all).toBe(0);
      const { results } = resultsOf(r.stdout);
      for (const run of results.runs) {
        expect(run.status, run.cell).toBe("passed");
        expect(run.guest?.bpfJitEnable, run.cell).toBe("0");
        for (const t of run.tests.filter((x) => x.command === "test_progs")) {
          expect(t.verdict).toBe("skip");
          expect(t.reason).toMatch(/callbacks are not allowed in non-JITed programs/);
        }
        const probe = run.tests.filter((x) => x.test === "timer_probe" && x.subtest);
        expect(probe.find((x) => x.subtest === "refused_without_jit")?.verdict).toBe("pass");
        expect(
          probe.filter((x) => x.subtest !== "refused_without_jit").every((x) => x.verdict === "skip"),
        ).toBe(true);
      }
      expect(r.stdout).toMatch(/JIT OFF \(bpf_jit_enable=0\)/);
    },
    2 * HOUR,
  );
});
