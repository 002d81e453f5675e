import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";

describe("suites/bpf-full.yaml, sharded, x86_64", () => {
  it(
    "accounts for every test of the whole BPF selftests over 2 guests: one verdict each, every skip with its reason",
    async () => {
      // ~70 min here under TCG (README's table): test_maps alone is ~59 min of it.
      const r = await khil(["boot-and-test", "--suite", "bpf-full", "--arch", "x86_64", "--shards", "2"], {
        timeoutMs: 4 * HOUR,
      });
      const { dir, results } = resultsOf(r.stdout);
      const run = results.runs[0];
      expect(run?.error, r.all).toBeUndefined();
      expect(run?.shards?.map((s) => s.dir)).toEqual(["shard-1-of-2", "shard-2-of-2"]);
      for (const s of run?.shards ?? [])
        expect(existsSync(join(dir, s.dir, "console.log")), s.dir).toBe(true);
      // What the shards were told to run: each test_progs -a list, and test_maps and test_verifier.
      const sent = [...r.all.matchAll(/running \.\/test_progs -j -a '([^']+)'/g)].flatMap((m) =>
        (m[1] ?? "").split(","),
      );
      expect(sent.length).toBeGreaterThan(500);
      const top = (run?.tests ?? []).filter((t) => !t.subtest);
      const names = top.map((t) => t.test);
      expect(names.length, "a test recorded twice").toBe(new Set(names).size);
      for (const t of [...sent, "test_maps", "test_verifier"]) expect(names, t).toContain(t);
      for (const t of run?.tests ?? []) {
        const name = `${t.test}${t.subtest ? `/${t.subtest}` : ""}`;
        expect(["pass", "fail", "skip", "notrun"], name).toContain(t.verdict);
        if (t.verdict === "skip" || t.verdict === "notrun") expect(t.reason, name).toBeTruthy();
      }
      // The tree's DENYLIST entries are skips with their file and line.
      expect(top.some((t) => /^denied: DENYLIST(\.x86_64)?:\d+/.test(t.reason ?? ""))).toBe(true);
      // Each shard's own summary agrees with what was parsed: no result line lost.
      expect((run?.problems ?? []).filter((p) => /summary says|were parsed/.test(p))).toEqual([]);
      for (const s of run?.shards ?? []) expect(qemuLeftIn(join(dir, s.dir)), s.dir).toEqual([]);
    },
    4 * HOUR,
  );
});
