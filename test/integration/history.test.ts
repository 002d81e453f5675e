import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { HistoryView } from "../../src/history/view.ts";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";

describe("memory across runs, on real guests", () => {
  it(
    "--repeat 10 runs the kernel ten times, each recorded, and gives a planted flaky test a pass rate between 0 and 1",
    async () => {
      const db = join(mkdtempSync(join(tmpdir(), "khil-history-it-")), "history.sqlite");
      const r = await khil([
        "boot-and-test",
        "--suite",
        "test/fixtures/suites/coins.yaml",
        "--repeat",
        "10",
        "--history",
        db,
      ]);
      expect([0, 1], r.all).toContain(r.exitCode);
      const { dir, results } = resultsOf(r.stdout);
      expect(results.runs).toHaveLength(10);
      expect(new Set(results.runs.map((x) => x.id)).size).toBe(10);
      expect(existsSync(join(dir, "repeat-10", "console.log"))).toBe(true);
      expect(qemuLeftIn(dir)).toEqual([]);
      expect(r.stdout).toMatch(/^pass rates over repeated runs:$/m);
      expect(r.stdout).toMatch(/x86_64\s+steady\s+10\/10\s+1\.00/);
      const rates = [2, 3].map((i) => {
        const m = new RegExp(`x86_64\\s+coin_${i}\\s+(\\d+)/10`).exec(r.stdout);
        return Number(m?.[1]) / 10;
      });
      // Each coin is fair: both landing the same way all ten times happens about 4 times in a million.
      expect(
        rates.some((x) => x > 0 && x < 1),
        r.stdout,
      ).toBe(true);

      const h = await khil(["history", "--history", db, "--json"]);
      expect(h.exitCode, h.all).toBe(0);
      const view = JSON.parse(h.stdout) as HistoryView;
      const steady = view.tests.find((t) => t.test === "steady");
      expect(steady).toMatchObject({ runs: 10, last: "..........", failRate: 0, flakes: 0 });
      expect(view.tests.find((t) => t.test === "coin_2")?.runs).toBe(10);
      // The first run boots; the nine after it are restored from its snapshot, and a restore is its own measure.
      expect(view.measures.find((m) => m.measure === "boot_to_ssh")?.runs).toBe(1);
      expect(view.measures.find((m) => m.measure === "restore_to_ssh")?.runs).toBe(9);
      expect(view.tests.every((t) => t.cell === "x86_64 coins linux-source-6.12 tcg local")).toBe(true);
      const text = await khil(["history", "--history", db, "--cell", "coins", "--test", "steady"]);
      expect(text.stdout).toMatch(/x86_64 coins linux-source-6\.12 tcg local\s+steady\s+10\s+\.{10}\s+0 %/);
    },
    HOUR,
  );
});
