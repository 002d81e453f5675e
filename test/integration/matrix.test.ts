import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

describe("khil matrix and report merge", () => {
  it(
    "runs the default and jit-harden cells into one table, and merging the cells' directories gives the same table",
    async () => {
      // The jit-off cells need kernels of their own: they are the slow tier's (test/slow/jit-off.test.ts).
      const cells = ["default", "jit-harden"].flatMap((v) =>
        ["x86_64", "arm64"].map((a) => `${a}-6.12-bpf-timer-${v}`),
      );
      const r = await khil(["matrix", ...cells.flatMap((c) => ["--cell", c])]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stderr).toMatch(/matrix: x86_64-6.12-bpf-timer-default \[testing\]/);
      const { dir, results } = resultsOf(r.stdout);
      expect(results.runs.map((x) => x.cell)).toEqual(cells);
      for (const run of results.runs) {
        for (const t of ["timer", "timer_crash", "timer_lockup", "timer_mim", "timer_probe"])
          expect(run.tests.find((x) => x.test === t && !x.subtest)?.verdict, `${run.cell} ${t}`).toBe("pass");
        // The mode the guest really ran, read back from it.
        expect(run.guest?.bpfJitHarden, run.cell).toBe(run.cell?.endsWith("jit-harden") ? "2" : "0");
      }
      expect(r.stdout).toMatch(/bpf_timer_latency/);
      const table = r.stdout.slice(0, r.stdout.indexOf("results:")).trim();
      const merged = await khil(["report", "merge", ...cells.map((c) => join(dir, c))]);
      expect(merged.exitCode, merged.all).toBe(0);
      expect(merged.stdout.slice(0, merged.stdout.indexOf("results:")).trim()).toBe(table);
    },
    2 * HOUR,
  );
});
