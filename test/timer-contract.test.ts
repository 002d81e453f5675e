/**
 * The timer contract from the probe's output to every verdict: the probe's own checks and the suite's
 * bound on its latency, read from outputs captured from real guests (kernels broken on purpose with
 * test/fixtures/series/break-bpf-timer-*.patch) through the same recording as a run, to the status, JUnit
 * and bisect's answer.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { judge } from "../src/bisect/judge.ts";
import { ktapExitProblems, parseKtap } from "../src/parse/ktap.ts";
import { parseMeasures } from "../src/parse/measures.ts";
import { toJunit } from "../src/report/junit.ts";
import { type ArchRun, testName } from "../src/report/results.ts";
import { matrixTable, toMarkdown } from "../src/report/summary.ts";
import { archStatus } from "../src/report/verdict.ts";
import { recordParsed } from "../src/run/commands.ts";
import { loadSuite } from "../src/run/suite.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", "ktap", name), "utf8");

/** One probe run as khil records it: parsed, judged by the default suite's bounds, given its status. */
function recorded(name: string, code: number, arch = "x86_64", accel = "tcg"): ArchRun {
  const text = fixture(name);
  const parsed = parseKtap(text);
  const measured = parseMeasures(text);
  const exit = ktapExitProblems("timer_probe", code, parsed);
  const run: ArchRun = {
    arch,
    suite: "bpf-timer",
    status: "passed",
    problems: [...parsed.problems, ...measured.problems, ...exit.problems],
    harness: exit.harness,
    splats: [],
    tests: [],
    timings: {},
  };
  const base = { arch, kernel: "6.12.118", accel, suite: "bpf-timer", command: "timer_probe" };
  recordParsed(run, base, parsed.tests, measured.measures, loadSuite("bpf-timer").bounds);
  run.status = archStatus(run);
  return run;
}

const junitOf = (run: ArchRun) =>
  toJunit({ khil: "test", startedAt: "", finishedAt: "", runDir: "", runs: [run] });
const failed = (run: ArchRun) => run.tests.filter((t) => t.verdict === "fail").map(testName);

describe("the timer contract, judged on outputs captured from real guests", () => {
  it("passes an unmodified 6.12 kernel, with the latency bound's margin in the check's log", () => {
    const run = recorded("x86_64-6.12-timer-probe.log", 0);
    expect(run.status).toBe("passed");
    expect(run.tests.find((t) => testName(t) === "timer_probe/latency")?.log).toMatch(
      /^khil bound: bpf_timer_excess median -57\.0 us .* within the 1\.00 ms allowed under tcg/,
    );
    expect(judge(run).verdict).toBe("good");
  });

  it.each(["x86_64", "arm64"])(
    "fails a kernel whose bpf_timers fire early (%s), naming each broken check with its worst sample",
    (arch) => {
      const run = recorded(`${arch}-6.12-timer-probe-early.log`, 1, arch);
      expect(run.status).toBe("failed");
      expect(failed(run)).toEqual([
        "timer_probe/rearm",
        "timer_probe/never_early",
        "timer_probe/never_early_abs",
        "timer_probe/latency",
        "timer_probe",
      ]);
      const junit = junitOf(run);
      expect(junit).toMatch(
        /name="timer_probe\/never_early" [^>]*><failure message="\d+ of 300 relative callbacks ran before their expiry: the earliest [\d.]+ us early \(armed for [\d.]+ us\)"/,
      );
      expect(junit).toMatch(
        /name="timer_probe\/never_early_abs" [^>]*><failure message="\d+ of 300 BPF_F_TIMER_ABS callbacks/,
      );
      expect(judge(run).verdict).toBe("bad");
    },
  );

  it.each(["x86_64", "arm64"])(
    "passes the packaged 6.1 (%s), whose uapi has no bpf_timer_start flags: those checks skip, naming the header",
    (arch) => {
      const run = recorded(`${arch}-6.1-timer-probe.log`, 0, arch);
      expect(run.status).toBe("passed");
      for (const c of ["never_early_abs", "pinned"])
        expect(run.tests.find((t) => t.subtest === c)?.reason).toMatch(
          /^the tree's include\/uapi\/linux\/bpf\.h has no BPF_F_TIMER_(ABS|CPU_PIN) \(bpf_timer_start's flags came in 6\.7\)$/,
        );
    },
  );

  it("passes an unmodified arm64 6.12 kernel too", () => {
    const run = recorded("arm64-6.12-timer-probe.log", 0, "arm64");
    expect(run.status).toBe("passed");
  });

  it.each([
    ["x86_64", "1\\.94 ms \\(95 % interval 1\\.93 ms to 1\\.94 ms, n=1000, worst sample 3\\.73 ms\\)"],
    ["arm64", "2\\.00 ms \\(95 % interval 2\\.00 ms to 2\\.00 ms, n=1000, worst sample 6\\.40 ms\\)"],
  ])(
    "fails a kernel whose callbacks run 2 ms late (%s) on the latency bound alone, every other check passing",
    (arch, figures) => {
      const run = recorded(`${arch}-6.12-timer-probe-late.log`, 0, arch);
      expect(run.status).toBe("failed");
      expect(failed(run)).toEqual(["timer_probe/latency", "timer_probe"]);
      const reason = run.tests.find((t) => testName(t) === "timer_probe/latency")?.reason;
      expect(reason).toMatch(
        new RegExp(`^bpf_timer_excess median ${figures} above the 1\\.00 ms allowed under tcg: `),
      );
      expect(junitOf(run)).toMatch(
        /name="timer_probe\/latency" time="0.000"><failure message="bpf_timer_excess median [\d.]+ ms/,
      );
      expect(judge(run).verdict).toBe("bad");
      // the Markdown summary and the matrix table say why, not only FAIL
      const results = { khil: "t", startedAt: "", finishedAt: "", runDir: "", runs: [run] };
      expect(toMarkdown(results)).toMatch(
        /\*\*timer_probe\/latency\*\* failed: bpf_timer_excess median [\d.]+ ms/,
      );
      expect(matrixTable(results)).toMatch(/timer_probe\/latency failed: bpf_timer_excess median [\d.]+ ms/);
      // the same output from a KVM guest is held to KVM's tighter limit, and still fails
      expect(recorded(`${arch}-6.12-timer-probe-late.log`, 0, arch, "kvm").status).toBe("failed");
    },
  );

  it("does not call a run whose checks all stayed inconclusive PASSED: a harness fault, and bisect skips", () => {
    const run = recorded("crafted-timer-probe-all-inconclusive.log", 0);
    expect(run.tests.map((t) => `${testName(t)}:${t.verdict}`)).toEqual([
      "timer_probe/cancel:skip",
      "timer_probe/map_delete:skip",
      "timer_probe:skip",
    ]);
    expect(run.status).toBe("failed");
    expect(run.harness).toEqual([
      "timer_probe tested nothing: inconclusive: no check passed, and at least one stayed inconclusive",
    ]);
    expect(junitOf(run)).toContain('<failure type="harness fault" message="timer_probe tested nothing');
    expect(judge(run).verdict).toBe("skip");
  });

  it("fails a probe that could not start (khil exec --push without its libraries: exit 127, no KTAP), as khil's fault", () => {
    const run = recorded("x86_64-6.12-timer-probe-missing-library.log", 127);
    expect(run.status).not.toBe("passed");
    expect(run.harness).toEqual(["timer_probe could not be run in the guest (exit code 127): see its log"]);
    expect(judge(run).verdict).toBe("skip");
  });
});
