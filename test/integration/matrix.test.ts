import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

describe("khil matrix and report merge", () => {
  it(
    "runs both default cells into one table, and merging the cells' directories gives the same table",
    async () => {
      const r = await khil(["matrix"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stderr).toMatch(/matrix: x86_64-6.12-bpf-timer-default \[testing\]/);
      const { dir, results } = resultsOf(r.stdout);
      expect(results.runs.map((x) => x.cell)).toEqual([
        "x86_64-6.12-bpf-timer-default",
        "arm64-6.12-bpf-timer-default",
      ]);
      for (const run of results.runs)
        for (const t of ["timer", "timer_crash", "timer_lockup", "timer_mim"])
          expect(run.tests.find((x) => x.test === t && !x.subtest)?.verdict, `${run.cell} ${t}`).toBe("pass");
      const table = r.stdout.slice(0, r.stdout.indexOf("results:")).trim();
      const merged = await khil([
        "report",
        "merge",
        join(dir, "x86_64-6.12-bpf-timer-default"),
        join(dir, "arm64-6.12-bpf-timer-default"),
      ]);
      expect(merged.exitCode, merged.all).toBe(0);
      expect(merged.stdout.slice(0, merged.stdout.indexOf("results:")).trim()).toBe(table);
    },
    2 * HOUR,
  );
});
