import { describe, expect, it } from "vitest";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";

describe("the tree's own deny lists, on a real guest", () => {
  it(
    "denies what the tree's DENYLIST lists with its file and line, and a suite's subtest entry through test_progs -d",
    async () => {
      const r = await khil([
        "boot-and-test",
        "--arch",
        "x86_64",
        "--suite",
        "test/fixtures/suites/tree-deny.yaml",
      ]);
      expect(r.exitCode, r.all).toBe(0);
      const { dir, results } = resultsOf(r.stdout);
      expect(qemuLeftIn(dir)).toEqual([]);
      const tests = results.runs[0]?.tests ?? [];
      const of = (test: string, subtest?: string) =>
        tests.find((t) => t.test === test && t.subtest === subtest);
      expect(of("get_stack_raw_tp")).toMatchObject({
        verdict: "skip",
        reason: "denied: DENYLIST:3: spams with kernel warnings until next bpf -> bpf-next merge",
      });
      expect(of("timer_crash", "hash")).toMatchObject({
        verdict: "skip",
        reason: "denied: the suite's own entry for one subtest",
      });
      expect(of("timer_crash", "array")?.verdict).toBe("pass");
      expect(of("timer")?.verdict).toBe("pass");
      expect(r.stderr).toMatch(/-d timer_crash\/hash/);
      expect(r.stdout).toMatch(/get_stack_raw_tp\s+\S+\s+\(denied: DENYLIST:3: spams/);
      // --no-deny runs everything, the tree's entries too.
      const all = await khil([
        ...[
          "boot-and-test",
          "--arch",
          "x86_64",
          "--suite",
          "test/fixtures/suites/tree-deny.yaml",
          "--no-deny",
        ],
      ]);
      const ran = resultsOf(all.stdout).results.runs[0]?.tests ?? [];
      expect(ran.filter((t) => t.reason?.startsWith("denied:"))).toEqual([]);
      expect(ran.find((t) => t.test === "get_stack_raw_tp")?.verdict).toMatch(/pass|fail/);
    },
    HOUR,
  );

  it(
    "builds and runs the cpuv4 and no_alu32 flavours of test_progs with their own objects, and names the flavours a tree has",
    async () => {
      for (const [flavour, arch] of [
        ["cpuv4", "x86_64"],
        ["no_alu32", "arm64"],
      ] as const) {
        const r = await khil(["boot-and-test", "--arch", arch, "--flavour", flavour]);
        expect(r.exitCode, r.all).toBe(0);
        const { dir, results } = resultsOf(r.stdout);
        expect(qemuLeftIn(dir)).toEqual([]);
        const run = results.runs[0];
        expect(run?.variant).toBe(flavour);
        expect(r.stderr).toContain(
          `running ./test_progs-${flavour} -a 'timer,timer_crash,timer_lockup,timer_mim'`,
        );
        for (const t of ["timer", "timer_crash", "timer_lockup", "timer_mim", "timer_probe"])
          expect(
            run?.tests.find((x) => x.test === t && x.subtest === undefined)?.verdict,
            `${flavour} ${t}`,
          ).toBe("pass");
      }
      const bad = await khil(["boot-and-test", "--arch", "x86_64", "--flavour", "alu64"]);
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(/alu64.*test_progs, no_alu32, cpuv4/);
    },
    HOUR,
  );

  it(
    "denies what the tree's DENYLIST.aarch64 lists on arm64 only, with its file and line",
    async () => {
      const suite = "test/fixtures/suites/tree-deny-arch.yaml";
      const r = await khil([
        "boot-and-test",
        "--arch",
        "arm64",
        "--suite",
        suite,
        "--test",
        "timer",
        "--test",
        "kprobe_multi_test",
      ]);
      expect(r.exitCode, r.all).toBe(0);
      const { dir, results } = resultsOf(r.stdout);
      expect(qemuLeftIn(dir)).toEqual([]);
      const tests = results.runs[0]?.tests ?? [];
      expect(tests.find((t) => t.test === "kprobe_multi_test" && !t.subtest)).toMatchObject({
        verdict: "skip",
        reason: "denied: DENYLIST.aarch64:4: needs CONFIG_FPROBE",
      });
      expect(tests.find((t) => t.test === "timer" && !t.subtest)?.verdict).toBe("pass");
      expect(r.stdout).toMatch(
        /kprobe_multi_test\s+\S+\s+\(denied: DENYLIST.aarch64:4: needs CONFIG_FPROBE\)/,
      );
    },
    HOUR,
  );
});
