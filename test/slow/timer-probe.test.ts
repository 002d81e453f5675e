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
