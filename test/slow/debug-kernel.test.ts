import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf, withSplatModule } from "../helpers.ts";

describe.each(["x86_64", "arm64"])(
  "--debug on %s: the timer tests on a lockdep + KASAN kernel (slow tier: a build of its own)",
  (arch) => {
    it(
      "boots a kernel with lockdep and KASAN on, and the timer tests pass there without a splat",
      async () => {
        const r = await khil(["boot-and-test", "--debug", "--arch", arch]);
        expect(r.exitCode, r.all).toBe(0);
        const { dir, results } = resultsOf(r.stdout);
        expect(results.runs[0]?.splats).toEqual([]);
        const console = readFileSync(join(dir, "console.log"), "utf8");
        expect(console).toMatch(/Lock dependency validator/);
        expect(console).toMatch(/KernelAddressSanitizer initialized/);

        const lockdep = await khil(["exec", "--debug", "--arch", arch, "--", "cat", "/proc/lockdep_stats"]);
        expect(lockdep.exitCode, lockdep.all).toBe(0);
        expect(lockdep.stdout).toMatch(/lock-classes:/);
      },
      2 * HOUR,
    );
  },
);

describe("--debug: a lockdep report no pattern knows (slow tier: the debug kernel of the case above)", () => {
  it(
    "fails the run all the same: lockdep turned itself off, which debug_locks tells after the command",
    async () => {
      const r = await withSplatModule(
        ["--debug", "--arch", "x86_64"],
        "test/fixtures/suites/unnamed-lockdep.yaml",
      );
      expect(r.exitCode, r.all).toBe(1);
      const { dir, results } = resultsOf(r.stdout);
      const run = results.runs[0];
      expect(run?.status).toBe("failed");
      expect(run?.tests.map((t) => `${t.test}:${t.verdict}`)).toEqual(["report:pass"]);
      expect(run?.splats).toEqual([
        expect.objectContaining({
          kind: "unrecognised report",
          title: "lockdep turned itself off (debug_locks 0) without a report khil recognises",
          during: "command report",
          excerpt: expect.stringContaining("lockdep found a locking bug"),
        }),
      ]);
      expect(run?.fault).toBe("kernel");
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("lockdep found a locking bug");
    },
    2 * HOUR,
  );
});
