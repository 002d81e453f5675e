import { describe, expect, it } from "vitest";
import { benchTable, row, stats } from "../src/bench/stats.ts";

describe("bench statistics", () => {
  it("min, median, max of odd and even samples", () => {
    expect(stats([3, 1, 2])).toMatchObject({ min: 1, median: 2, max: 3 });
    expect(stats([4, 1, 2, 3]).median).toBe(2.5);
  });

  it("ratios against the raw tools and goals met or missed", () => {
    const r = row("boot to SSH", [4.2, 4.4, 4.3], [4.0, 4.1, 4.2], { seconds: 3 });
    expect(r.ratio).toBeCloseTo(4.3 / 4.1);
    expect(r.goal?.met).toBe(false);
    expect(row("incremental", [10], [10], { ratio: 1.1 }).goal?.met).toBe(true);
    expect(benchTable([r])).toMatch(
      /boot to SSH\s+4\.20\/4\.30\/4\.40\s+4\.00\/4\.10\/4\.20\s+1\.05\s+<= 3 s MISSED/,
    );
  });
});
