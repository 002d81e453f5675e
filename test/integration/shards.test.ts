import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";

describe("a cell sharded over guests, on real guests", () => {
  it(
    "deals the default suite's tests over two guests booted at once and merges every result into one run",
    async () => {
      const one = await khil(["boot-and-test", "--arch", "x86_64"]);
      expect(one.exitCode, one.all).toBe(0);
      const whole = resultsOf(one.stdout).results.runs[0]?.tests ?? [];
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--shards", "2"]);
      expect(r.exitCode, r.all).toBe(0);
      const { dir, results } = resultsOf(r.stdout);
      const run = results.runs[0];
      expect(run?.status).toBe("passed");
      // The same tests as an unsharded run, each once, each with its verdict.
      const names = (ts: typeof whole) => ts.map((t) => `${t.test}/${t.subtest ?? ""}`).sort();
      expect(names(run?.tests ?? [])).toEqual(names(whole));
      // Dealt from the sorted list: the same shards every time.
      expect(r.stderr).toMatch(/5 tests over 2 guests \(3 \+ 2\)/);
      expect(run?.shards?.map((s) => [s.dir, s.status])).toEqual([
        ["shard-1-of-2", "passed"],
        ["shard-2-of-2", "passed"],
      ]);
      for (const s of run?.shards ?? []) {
        const shardDir = join(dir, s.dir);
        expect(
          readdirSync(shardDir).some((f) => f.startsWith("console")),
          shardDir,
        ).toBe(true);
        expect(qemuLeftIn(shardDir)).toEqual([]);
      }
      expect(existsSync(join(dir, "report.html"))).toBe(true);
      expect(r.stdout).toMatch(/shard-2-of-2: passed, 2 tests/);
    },
    HOUR,
  );

  it("refuses --shards for a suite whose commands cannot be split, before any build", async () => {
    const r = await khil(["boot-and-test", "--arch", "x86_64", "--suite", "timers", "--shards", "2"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--shards: suite timers's command .* cannot be split over guests/);
  });
});
