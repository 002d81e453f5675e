import { describe, expect, it } from "vitest";
import { parseBookkeeping, taintLetters, unexplained } from "../src/parse/taint.ts";

describe("the kernel's own bookkeeping beside the splat patterns", () => {
  it("reads the taint mask and lockdep's debug_locks as the guest prints them", () => {
    expect(parseBookkeeping("0\n")).toEqual({ tainted: 0 });
    expect(parseBookkeeping("4608\n debug_locks:                            1\n")).toEqual({
      tainted: 4608,
      debugLocks: 1,
    });
    expect(parseBookkeeping("cat: can't open '/proc/sys/kernel/tainted'\n")).toBeUndefined();
    expect(taintLetters(4608)).toEqual(["W", "O"]);
  });

  it("fails a new taint bit that no recognised report explains, naming the letter", () => {
    expect(unexplained({ tainted: 0 }, { tainted: 512 }, 0)).toEqual([
      "the kernel tainted itself (W: /proc/sys/kernel/tainted 512) without a report khil recognises",
    ]);
  });

  it("leaves bits that are no report (bpf_testmod's O and E, a test module's N, a lab machine's I and S), and bits there before, alone", () => {
    expect(unexplained({ tainted: 0 }, { tainted: 4096 + 8192 + 2 ** 18 + 2 ** 11 + 4 }, 0)).toEqual([]);
    expect(unexplained({ tainted: 512 }, { tainted: 512 }, 0)).toEqual([]);
  });

  it("says nothing when a recognised splat already fails the run", () => {
    expect(unexplained({ tainted: 0 }, { tainted: 512 }, 1)).toEqual([]);
  });

  it("fails lockdep switching itself off with no lockdep report recognised", () => {
    expect(unexplained({ tainted: 0, debugLocks: 1 }, { tainted: 0, debugLocks: 0 }, 0)).toEqual([
      "lockdep turned itself off (debug_locks 0) without a report khil recognises",
    ]);
  });
});
