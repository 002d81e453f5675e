import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, resultsOf, withSplatModule } from "../helpers.ts";

const KMEMLEAK = ["--arch", "x86_64", "--config", "kernel-config/kmemleak.config"];

describe("kmemleak (kernel-config/kmemleak.config): khil's own scan after the last command (slow tier)", () => {
  it(
    "finds nothing after the timer tests, and reports a module's leak with its backtrace",
    async () => {
      const clean = await khil(["boot-and-test", ...KMEMLEAK]);
      expect(clean.exitCode, clean.all).toBe(0);
      const first = resultsOf(clean.stdout);
      expect(first.results.runs[0]?.splats).toEqual([]);
      // The scan ran, and its list was empty.
      expect(readFileSync(join(first.dir, "kmemleak-x86_64.log"), "utf8")).toBe("");

      const leaky = await withSplatModule(KMEMLEAK, "test/fixtures/suites/kmemleak-leak.yaml");
      expect(leaky.exitCode, leaky.all).toBe(1);
      const { dir, results } = resultsOf(leaky.stdout);
      const run = results.runs[0];
      expect(run?.tests.map((t) => `${t.test}:${t.verdict}`)).toEqual(["leak:pass"]);
      expect(run?.status).toBe("failed");
      const leak = run?.splats.find((s) => s.kind === "kmemleak");
      expect(leak?.title).toMatch(/^kmemleak: \d+ new suspected memory leaks/);
      expect(leak?.during).toBe("kmemleak scan");
      expect(leak?.excerpt).toMatch(/unreferenced object 0x[0-9a-f]+ \(size 128\)/);
      expect(leak?.excerpt).toMatch(/kmemleak_leak\+\S+ \[khil_splat\]/);
      expect(existsSync(join(dir, "kmemleak-x86_64.log"))).toBe(true);
      expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(/<failure type="kernel kmemleak"/);
    },
    2 * HOUR,
  );
});
