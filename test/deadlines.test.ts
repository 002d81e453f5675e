import { describe, expect, it } from "vitest";
import { DEFAULT_DEADLINES, resolveDeadlines } from "../src/run/deadlines.ts";
import { loadSuite } from "../src/run/suite.ts";

describe("deadlines", () => {
  it("takes the command line over the suite over the defaults, stage by stage", () => {
    expect(resolveDeadlines({})).toEqual(DEFAULT_DEADLINES);
    expect(resolveDeadlines({ boot: 5 }, { boot: 20, total: 90 })).toEqual({
      ...DEFAULT_DEADLINES,
      boot: 5,
      total: 90,
    });
  });

  it("reads a suite's timeouts", () => {
    expect(loadSuite("test/fixtures/suites/sleeper.yaml").timeouts).toEqual({ total: 90, boot: 20 });
  });
});
