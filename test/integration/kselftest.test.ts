import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, qemuLeftIn, resultsOf, verdictOf } from "../helpers.ts";

const suite = (name: string) => join(import.meta.dirname, "..", "fixtures", "suites", `${name}.yaml`);

describe("kselftest suites in a real x86_64 guest", () => {
  it(
    "runs test_progs and kselftest timers programs in one boot, each with its own selection",
    async () => {
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--suite", suite("timer-stack-short")]);
      expect(r.exitCode, r.all).toBe(0);
      const { dir, results } = resultsOf(r.stdout);
      const run = results.runs[0];
      expect(run?.status).toBe("passed");
      for (const t of ["timer", "timer_crash", "nanosleep", "threadtest"])
        expect(verdictOf(run, t), t).toBe("pass");
      expect(verdictOf(run, "nanosleep/CLOCK_MONOTONIC")).toBe("pass");
      expect(run?.tests.find((t) => t.test === "nanosleep" && t.subtest === "UNKNOWN_CLOCKID")?.verdict).toBe(
        "skip",
      );
      // The program's own option reached it through kselftest's runner.
      expect(readFileSync(join(dir, "test-x86_64-timers.log"), "utf8")).toMatch(/for 2 seconds/);
      const junit = readFileSync(join(dir, "junit.xml"), "utf8");
      expect(junit).toContain('name="nanosleep/CLOCK_MONOTONIC"');
      expect(qemuLeftIn(dir)).toEqual([]);
    },
    HOUR,
  );

  it(
    "fails a program kselftest reports with `# exit=`, with the code as the reason",
    async () => {
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--suite", suite("timers-bad-option")]);
      expect(r.exitCode, r.all).toBe(1);
      const run = resultsOf(r.stdout).results.runs[0];
      expect(run?.status).toBe("failed");
      expect(run?.tests.find((t) => t.test === "threadtest")).toMatchObject({
        verdict: "fail",
        reason: "exit code 255",
      });
      expect(verdictOf(run, "nanosleep")).toBe("pass");
    },
    HOUR,
  );

  it(
    "names the test that was running when khil's deadline stopped the runner",
    async () => {
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--suite", suite("timers-cut-short")]);
      expect(r.exitCode, r.all).toBe(1);
      const run = resultsOf(r.stdout).results.runs[0];
      expect(run?.tests.find((t) => t.test === "inconsistency-check" && !t.subtest)).toMatchObject({
        verdict: "fail",
        reason: "the output ends while it ran (crashed, killed or stopped)",
      });
      expect(run?.problems).toContain("timeout: command timers after 30 s");
    },
    HOUR,
  );
});
