import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

describe("khil's timer probe on a kernel whose bpf_timer_cancel is broken (slow tier)", () => {
  it(
    "fails its cancel check, naming what went wrong, and passes the checks the patch leaves alone",
    async () => {
      const r = await khil([
        "boot-and-test",
        "--suite",
        "bpf-timer-probe",
        "--series",
        "test/fixtures/series/break-bpf-timer-cancel.patch",
      ]);
      expect(r.exitCode, r.all).toBe(1);
      const [run] = resultsOf(r.stdout).results.runs;
      expect(run?.status).toBe("failed");
      const verdict = (c: string) => run?.tests.find((t) => t.subtest === c)?.verdict;
      expect(verdict("cancel")).toBe("fail");
      expect(run?.tests.find((t) => t.subtest === "cancel")?.log).toMatch(
        /a cancelled timer's callback ran 1 times/,
      );
      for (const c of ["array", "hash", "lru_hash", "inner_map", "rearm", "map_delete", "usercnt"])
        expect(verdict(c), c).toBe("pass");
      expect(run?.tests.find((t) => t.test === "timer_probe" && !t.subtest)?.verdict).toBe("fail");
    },
    HOUR,
  );
});

describe.each(["x86_64", "arm64"])(
  "the timer contract on kernels broken on purpose, %s (slow tier)",
  (arch) => {
    const broken = (patch: string) =>
      khil(["boot-and-test", "--arch", arch, "--series", `test/fixtures/series/${patch}.patch`]);

    it(
      "bpf_timers that fire early fail never_early (relative and BPF_F_TIMER_ABS) with the earliest sample",
      async () => {
        const r = await broken("break-bpf-timer-early");
        expect(r.exitCode, r.all).toBe(1);
        const { dir, results } = resultsOf(r.stdout);
        const run = results.runs[0];
        expect(run?.status).toBe("failed");
        const early = run?.tests.find((t) => t.subtest === "never_early");
        expect(early?.verdict).toBe("fail");
        expect(early?.reason).toMatch(
          /^\d+ of 300 relative callbacks ran before their expiry: the earliest [\d.]+ us early/,
        );
        expect(run?.tests.find((t) => t.subtest === "never_early_abs")?.verdict).toBe("fail");
        expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(
          /name="timer_probe\/never_early" [^>]*><failure message="\d+ of 300 relative callbacks ran before/,
        );
      },
      HOUR,
    );

    it(
      "bpf_timer callbacks 2 ms late pass every check of the contract but fail the suite's latency bound",
      async () => {
        const r = await broken("break-bpf-timer-late");
        expect(r.exitCode, r.all).toBe(1);
        const { dir, results } = resultsOf(r.stdout);
        const run = results.runs[0];
        const failed = run?.tests.filter((t) => t.verdict === "fail").map((t) => t.subtest ?? t.test);
        expect(failed).toEqual(["latency", "timer_probe"]);
        const latency = run?.tests.find((t) => t.subtest === "latency");
        expect(latency?.reason).toMatch(
          /^bpf_timer_excess median (1\.9\d|2\.\d\d) ms \(95 % interval .*\) above the 1\.00 ms allowed under tcg/,
        );
        expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(
          /name="timer_probe\/latency" [^>]*><failure message="bpf_timer_excess median/,
        );
      },
      HOUR,
    );
  },
);
