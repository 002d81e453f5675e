import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cacheDir } from "../../src/host/paths.ts";
import { HOUR, khil, resultsOf } from "../helpers.ts";

/**
 * Five khil runs started at once on one empty cache, as on a CI runner or a workstation where a user starts
 * a second run before the first has built anything: three `khil build`s and two `khil boot-and-test`s of the
 * default x86_64 cell. The cache is new (tree extraction, kernel, selftests, guest image, SSH key all made by
 * whichever run gets there first); only the compiler cache is shared with the main one, so that the kernel
 * compiles from ccache in minutes rather than cold.
 */
describe("concurrent runs on one empty cache (slow tier: npm run test:slow)", () => {
  const cache = mkdtempSync(join(cacheDir(), "concurrency-test-"));
  const runs = join(cache, "runs");
  afterAll(() => rmSync(cache, { recursive: true, force: true }));

  it(
    "one build happens, every run succeeds, no lock is taken over, no run waits past its deadline",
    async () => {
      const env = { KHIL_CACHE: cache, KHIL_RUNS: runs, KHIL_CCACHE_DIR: join(cacheDir(), "ccache") };
      const builds = [1, 2, 3].map(() => khil(["build", "--arch", "x86_64"], { env }));
      const tests = [1, 2].map(() => khil(["boot-and-test", "--arch", "x86_64"], { env }));
      const all = await Promise.all([...builds, ...tests]);
      for (const r of all) expect(r.exitCode, r.all).toBe(0);
      const said = all.map((r) => r.stderr);
      // make ran in exactly one process; every other found its output up to date once it had the lock.
      const compiled = said.filter((s) => /building x86_64 kernel: \d+ objects/.test(s));
      const upToDate = said.filter((s) => s.includes("building x86_64 kernel: up to date"));
      expect([compiled.length, upToDate.length]).toEqual([1, 4]);
      // The four others waited for a lock someone held (the tree's extraction at least), and none took one over.
      const waited = said.filter((s) => /waiting for pid \d+ \(.*\) to finish/.test(s));
      expect(waited.length).toBeGreaterThanOrEqual(4);
      expect(said.filter((s) => s.includes("taking over a lock"))).toEqual([]);
      // The tree was extracted once (the others only waited for it: "to finish extracting ...").
      expect(
        said.filter((s) => /^khil: extracting \/usr\/src\/linux-source-6\.12\S* into /m.test(s)),
      ).toHaveLength(1);
      for (const r of all.slice(builds.length)) {
        const run = resultsOf(r.stdout).results.runs[0];
        expect(run?.status, r.all).toBe("passed");
        expect(run?.error).toBeUndefined();
      }
    },
    2 * HOUR,
  );
});
