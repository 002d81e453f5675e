import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKtap } from "../src/parse/ktap.ts";
import { againstBaseline, parseMeasures } from "../src/parse/measures.ts";
import { measureRows } from "../src/report/summary.ts";
import { namesAndVerdicts, PROBE_JIT_CHECKS } from "./helpers.ts";

// probes/timer_probe as khil's x86_64 6.12 guest printed it (TCG): all checks passing, and a build whose
// arming program the verifier refused (every check fails at load, with the verifier's log); a kernel built
// with test/fixtures/series/break-bpf-timer-cancel.patch; a selection naming no check; the jit-off kernel.
const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", "ktap", name), "utf8");

describe("timer_probe output, captured from a guest", () => {
  it("reads each check as a subtest of timer_probe, and the JIT-off check as skipped with its reason", () => {
    const run = parseKtap(fixture("x86_64-6.12-timer-probe.log"));
    expect(namesAndVerdicts(run.tests)).toEqual([
      ...PROBE_JIT_CHECKS.map((c) => `timer_probe/${c}:pass`),
      "timer_probe/refused_without_jit:skip",
      "timer_probe:pass",
    ]);
    expect(run.tests.find((t) => t.subtest === "refused_without_jit")?.reason).toBe(
      "the JIT is on (bpf_jit_enable is not 0)",
    );
    expect(run.problems).toEqual([]);
  });

  it("fails every check when the programs do not load, keeping the verifier's reason in the log", () => {
    const run = parseKtap(fixture("x86_64-6.12-timer-probe-verifier-refused.log"));
    const array = run.tests.find((t) => t.subtest === "array");
    expect(array?.verdict).toBe("fail");
    expect(array?.log).toContain("timer pointer in R1 map_uid=0 doesn't match map pointer in R2");
    expect(run.tests.find((t) => !t.subtest)?.verdict).toBe("fail");
  });

  it("fails only the cancel check on a kernel whose bpf_timer_cancel leaves the timer armed", () => {
    const run = parseKtap(fixture("x86_64-6.12-timer-probe-broken-cancel.log"));
    expect(run.tests.filter((t) => t.verdict === "fail").map((t) => t.subtest ?? t.test)).toEqual([
      "cancel",
      "timer_probe",
    ]);
    expect(run.tests.find((t) => t.subtest === "cancel")?.log).toBe(
      "FAIL: a cancelled timer's callback ran 1 times",
    );
  });

  it("with the JIT off, passes only the refusal check, every other check skipped with the reason", () => {
    const run = parseKtap(fixture("x86_64-6.12-timer-probe-jit-off.log"));
    const subs = run.tests.filter((t) => t.subtest);
    expect(subs.filter((t) => t.verdict === "pass").map((t) => t.subtest)).toEqual(["refused_without_jit"]);
    expect(subs.filter((t) => t.verdict === "skip")).toHaveLength(11);
    expect(new Set(subs.filter((t) => t.verdict === "skip").map((t) => t.reason))).toEqual(
      new Set(["the JIT is off: timer callbacks need it"]),
    );
    expect(parseMeasures(fixture("x86_64-6.12-timer-probe-jit-off.log")).measures).toEqual([]);
  });

  it("fails, naming the valid checks, when a selection matches none of them", () => {
    const run = parseKtap(fixture("x86_64-6.12-timer-probe-no-such-check.log"));
    expect(namesAndVerdicts(run.tests)).toEqual(["timer_probe:fail"]);
    expect(run.tests[0]?.log).toMatch(/no check matches 'cancle': valid are array, hash/);
  });

  it("reads the latency measurements, with their quartiles, and the ratio to the user-space baseline", () => {
    const { measures, problems } = parseMeasures(fixture("x86_64-6.12-timer-probe.log"));
    expect(problems).toEqual([]);
    expect(measures).toEqual([
      {
        name: "bpf_timer_latency",
        unit: "ns",
        n: 1000,
        min: 15179,
        p25: 62669,
        p50: 68642,
        p75: 77290,
        p99: 424491,
        max: 3349723,
        baseline: "user_hrtimer_latency",
      },
      {
        name: "user_hrtimer_latency",
        unit: "ns",
        n: 1000,
        min: 38499,
        p25: 119661,
        p50: 126053,
        p75: 139001,
        p99: 519724,
        max: 3409862,
      },
      {
        name: "bpf_timer_excess",
        unit: "ns",
        n: 1000,
        min: -3346566,
        p25: -68309,
        p50: -57018,
        p75: -50195,
        p99: 269391,
        max: 3214987,
      },
    ]);
    const [bpf] = measures;
    expect(bpf && againstBaseline(bpf, measures)?.p50).toBeCloseTo(68642 / 126053);
  });
});

describe("measurements", () => {
  it("names a line that lacks a figure as a problem, and takes no measurement from it", () => {
    const r = parseMeasures("# khil-measure: x unit=ns n=3 min=1 p50=2 max=4\nok 1 x\n");
    expect(r.measures).toEqual([]);
    expect(r.problems).toEqual(["measurement x lacks p99: # khil-measure: x unit=ns n=3 min=1 p50=2 max=4"]);
    const q = parseMeasures("# khil-measure: x unit=ns n=3 min=1 p25=? p50=2 p99=3 max=4\n");
    expect(q.problems).toEqual([
      "measurement x lacks p25: # khil-measure: x unit=ns n=3 min=1 p25=? p50=2 p99=3 max=4",
    ]);
  });

  it("shows no ratio without the baseline, and one row per measurement of each run", () => {
    const m = { name: "a", unit: "ns", n: 1, min: 1, p50: 1000, p99: 2000, max: 3000, baseline: "b" };
    expect(againstBaseline(m, [m])).toBeUndefined();
    const rows = measureRows([
      {
        arch: "arm64",
        suite: "s",
        status: "passed",
        problems: [],
        splats: [],
        tests: [],
        timings: {},
        measures: [{ ...m, command: "probe" }],
      },
    ]);
    expect(rows).toEqual([["arm64", "?", "?", "a", "1", "1.0 us", "2.0 us", "3.0 us", "-"]]);
  });
});
