import { describe, expect, it } from "vitest";
import type { Measure } from "../src/parse/measures.ts";
import type { ParsedTest } from "../src/parse/types.ts";
import { applyBounds, type Bound, judgeBound, medianInterval } from "../src/report/bounds.ts";
import { loadSuite } from "../src/run/suite.ts";

const bound: Bound = {
  test: "timer_probe/latency",
  measure: "bpf_timer_excess",
  median: { tcg: 1_000_000, kvm: 250_000 },
  reason: "callbacks ran late",
};

const excess = (p50: number, iqr: number, n = 1000): Measure => ({
  name: "bpf_timer_excess",
  unit: "ns",
  n,
  min: p50 - 5 * iqr,
  p25: p50 - iqr / 2,
  p50,
  p75: p50 + iqr / 2,
  p99: p50 + 5 * iqr,
  max: p50 + 20 * iqr,
});

const probeTests = (): ParsedTest[] => [
  { test: "timer_probe", subtest: "latency", verdict: "pass", log: "" },
  { test: "timer_probe", verdict: "pass", log: "" },
];

describe("the suite's bounds on what the probe measured", () => {
  it("takes the median's interval from the sample's own spread (1.57 IQR / sqrt n)", () => {
    const { low, high } = medianInterval(excess(0, 100_000, 100));
    expect(low).toBeCloseTo(-15_700);
    expect(high).toBeCloseTo(15_700);
  });

  it("fails a test whose median excess is 2 ms under TCG, naming the figures and the bound", () => {
    const tests = probeTests();
    applyBounds(tests, [excess(2_000_000, 300_000)], [bound], "tcg");
    expect(tests.map((t) => t.verdict)).toEqual(["fail", "fail"]);
    expect(tests[0]?.reason).toMatch(
      /^bpf_timer_excess median 2\.00 ms \(95 % interval .* n=1000, worst sample 8\.00 ms\) above the 1\.00 ms allowed under tcg: callbacks ran late$/,
    );
    expect(tests[1]?.reason).toBe("timer_probe/latency breached its bound");
  });

  it("passes a sound kernel's negative excess and keeps the judgement, with its margin, in the log", () => {
    const tests = probeTests();
    applyBounds(tests, [excess(-60_000, 100_000)], [bound], "tcg");
    expect(tests.map((t) => t.verdict)).toEqual(["pass", "pass"]);
    expect(tests[0]?.log).toMatch(
      /^khil bound: .* within the 1\.00 ms allowed under tcg \(margin 1\.06 ms\)$/,
    );
  });

  it("does not fail on a stalled host's spread, only when the whole interval is above the bound", () => {
    // a median just above the bound, but too uncertain (a few samples, a huge spread) to call a breach
    expect(judgeBound(bound, excess(1_100_000, 5_000_000, 50), "tcg").holds).toBe(true);
    expect(judgeBound(bound, excess(1_100_000, 5_000_000, 100_000), "tcg").holds).toBe(false);
  });

  it("holds each accelerator to its own limit, and an unnamed one to the loosest, saying so", () => {
    expect(judgeBound(bound, excess(500_000, 10_000), "kvm").holds).toBe(false);
    expect(judgeBound(bound, excess(500_000, 10_000), "tcg").holds).toBe(true);
    const lava = judgeBound(bound, excess(500_000, 10_000), "lava");
    expect(lava.holds).toBe(true);
    expect(lava.text).toContain("allowed under lava (no bound of its own: tcg's, the loosest)");
  });

  it("fails a passing test whose bounded measurement is missing or has no quartiles: a bound is never skipped", () => {
    const missing = probeTests();
    applyBounds(missing, [], [bound], "tcg");
    expect(missing[0]?.verdict).toBe("fail");
    expect(missing[0]?.reason).toBe("bpf_timer_excess was not measured, so its bound cannot be judged");
    const old = probeTests();
    const { p25: _a, p75: _b, ...noQuartiles } = excess(0, 1000);
    applyBounds(old, [noQuartiles], [bound], "tcg");
    expect(old[0]?.verdict).toBe("fail");
  });

  it("leaves a test that failed or skipped on its own as it was", () => {
    const tests: ParsedTest[] = [
      { test: "timer_probe", subtest: "latency", verdict: "fail", log: "x", reason: "early" },
    ];
    applyBounds(tests, [], [bound], "tcg");
    expect(tests[0]).toEqual({
      test: "timer_probe",
      subtest: "latency",
      verdict: "fail",
      log: "x",
      reason: "early",
    });
  });

  it("is read from the suites that run the probe, with a limit for each accelerator", () => {
    for (const name of ["bpf-timer", "bpf-timer-probe"]) {
      const [b] = loadSuite(name).bounds;
      expect(b?.test).toBe("timer_probe/latency");
      expect(Object.keys(b?.median ?? {}).sort()).toEqual(["kvm", "tcg"]);
    }
  });
});
