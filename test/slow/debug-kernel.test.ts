import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf } from "../helpers.ts";

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
