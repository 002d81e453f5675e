import { describe, expect, it } from "vitest";
import type { ArchRun } from "../src/report/results.ts";
import { mergeShardRuns, planShards, shardUnits } from "../src/run/shards.ts";
import { loadSuite } from "../src/run/suite.ts";
import { nearest } from "../src/selftests/build.ts";
import { makefilePrograms, planSelftests } from "../src/selftests/plan.ts";

const run = (over: Partial<ArchRun>): ArchRun => ({
  arch: "x86_64",
  suite: "bpf-full",
  status: "passed",
  problems: [],
  harness: [],
  splats: [],
  tests: [],
  timings: {},
  ...over,
});
const rec = (test: string, verdict: "pass" | "fail" | "skip", reason?: string) => ({
  arch: "x86_64",
  kernel: "6.12.118",
  accel: "tcg",
  suite: "bpf-full",
  command: "test_progs",
  test,
  verdict,
  ...(reason ? { reason } : {}),
});

describe("shards", () => {
  it("deals the units in turn from the sorted list: the same shards for the same units, none empty", () => {
    const units = ["d", "a", "c", "b", "e", "a"];
    expect(planShards(units, 2)).toEqual([
      ["a", "c", "e"],
      ["b", "d"],
    ]);
    expect(planShards([...units].reverse(), 2)).toEqual(planShards(units, 2));
    expect(planShards(["a", "b"], 4)).toEqual([["a"], ["b"]]);
    expect(planShards(units, 1)).toEqual([["a", "b", "c", "d", "e"]]);
    // One test's subtests go to one shard, so no test is run (and reported) twice.
    expect(planShards(["t/x", "t/y", "u", "v/1", "v/2"], 2)).toEqual([["t/x", "t/y", "v/1", "v/2"], ["u"]]);
  });

  it("splits the suite's test_progs tests among those built, and each subtestArgs command's test", () => {
    const suite = loadSuite("bpf-full");
    const declared = ["timer", "timer_crash", "xdp"];
    expect(shardUnits(suite, "x86_64", declared, undefined)).toEqual([
      "test_maps",
      "test_verifier",
      "timer",
      "timer_crash",
      "xdp",
    ]);
    // The user's selection: a subtest part stays; a command's test given literally goes to it alone.
    expect(shardUnits(suite, "x86_64", declared, ["timer*/array", "test_verifier/12"])).toEqual([
      "test_verifier/12",
      "timer/array",
      "timer_crash/array",
    ]);
    const timer = loadSuite("bpf-timer");
    expect(shardUnits(timer, "x86_64", ["timer", "timer_lockup"], undefined)).toEqual([
      "timer",
      "timer_lockup",
      "timer_probe",
    ]);
  });

  it("refuses a suite with a command that would run whole in every shard, and a selection of nothing", () => {
    const suite = loadSuite("timers");
    expect(() => shardUnits(suite, "x86_64", [], undefined)).toThrow(/cannot be split over guests/);
    const full = loadSuite("bpf-full");
    const [progs, ...rest] = full.commands;
    if (!progs) throw new Error("bpf-full has commands");
    const own = { ...full, commands: [{ ...progs, tests: ["timer"] }, ...rest] };
    expect(() => shardUnits(own, "x86_64", ["timer"], undefined)).toThrow(/test_progs cannot be split/);
    const noTests = {
      ...full,
      commands: [progs, { ...progs, name: "x", parser: "exit-code" as const, subtestArgs: true }],
    };
    expect(() => shardUnits(noTests, "x86_64", ["timer"], undefined)).toThrow(/x cannot be split/);
    expect(() => shardUnits({ ...full, commands: [progs] }, "x86_64", [], undefined)).toThrow(
      /selects no test to split/,
    );
    // A glob in --test reaches a subtestArgs command's tests, as it reaches test_progs'.
    expect(shardUnits(full, "x86_64", ["timer"], ["test_*"])).toEqual(["test_maps", "test_verifier"]);
  });

  it("merges the shards' runs: every test, each finding with its shard, the slowest guest's stage times", () => {
    const cell = run({ status: "error", timings: { build: 100, selftests: 50, push: 1 } });
    const merged = mergeShardRuns(cell, [
      {
        dir: "shard-1-of-2",
        seconds: 30,
        run: run({ tests: [rec("a", "pass")], timings: { boot: 3, push: 2, run: 20 } }),
      },
      {
        dir: "shard-2-of-2",
        seconds: 40,
        run: run({
          status: "failed",
          tests: [rec("b", "fail", "ASSERT failed"), rec("c", "skip", "denied: DENYLIST:3: flaky")],
          problems: ["test_progs exited 1"],
          timings: { boot: 5, push: 3, run: 15 },
        }),
      },
    ]);
    expect(merged.tests.map((t) => t.test)).toEqual(["a", "b", "c"]);
    expect(merged.problems).toEqual(["shard-2-of-2: test_progs exited 1"]);
    expect(merged.timings).toEqual({ build: 100, selftests: 50, push: 4, boot: 5, run: 20 });
    expect(merged.shards?.map((s) => [s.dir, s.status, s.tests, s.seconds])).toEqual([
      ["shard-1-of-2", "passed", 1, 30],
      ["shard-2-of-2", "failed", 2, 40],
    ]);
    expect(merged.status).toBe("failed");
    // A shard whose guest never came up makes the whole an error, naming the shard.
    const dead = mergeShardRuns(cell, [
      { dir: "shard-1-of-2", seconds: 1, run: run({ tests: [rec("a", "pass")] }) },
      {
        dir: "shard-2-of-2",
        seconds: 1,
        run: run({ status: "error", error: { stage: "boot", message: "no SSH" } }),
      },
    ]);
    expect(dead.status).toBe("error");
    expect(dead.error?.message).toBe("shard-2-of-2: no SSH");
    // Each shard's test and splat name their shard (its log, kcidb's test ids keep the test's own name).
    expect(merged.tests.map((t) => t.shard)).toEqual(["shard-1-of-2", "shard-2-of-2", "shard-2-of-2"]);
    // Every shard's error is kept, and a shard with no result fails the whole even if the rest passed.
    const both = mergeShardRuns(cell, [
      { dir: "shard-1-of-3", seconds: 1, run: run({ error: { stage: "boot", message: "no SSH" } }) },
      { dir: "shard-2-of-3", seconds: 1, run: run({ error: { stage: "push", message: "disk full" } }) },
      { dir: "shard-3-of-3", seconds: 1, run: run({}) },
    ]);
    expect(both.error?.message).toBe("shard-1-of-3: no SSH");
    // A harness fault of one shard stays the harness's (bisect skips), not a test's.
    expect(both.problems).toEqual([]);
    expect(both.harness).toEqual(["shard-2-of-3: push: disk full", "shard-3-of-3: no test gave a result"]);
    // A kernel that did not boot in one shard did not boot: its error is the run's, with no guest facts.
    const guest = { kernelRelease: "6.12.118" } as ArchRun["guest"];
    const noBoot = mergeShardRuns(cell, [
      { dir: "shard-1-of-2", seconds: 1, run: run({ guest, error: { stage: "push", message: "x" } }) },
      { dir: "shard-2-of-2", seconds: 1, run: run({ error: { stage: "boot", message: "no console" } }) },
    ]);
    expect(noBoot.error?.message).toBe("shard-2-of-2: no console");
    expect(noBoot.guest).toBeUndefined();
    const silent = mergeShardRuns(run({}), [
      { dir: "shard-1-of-2", seconds: 1, run: run({ tests: [rec("a", "pass")] }) },
      { dir: "shard-2-of-2", seconds: 1, run: run({ status: "error" }) },
    ]);
    expect(silent.status).toBe("failed");
  });
});

describe("a whole selftests build", () => {
  it("builds every program of progs/ when every prog_test is selected", () => {
    const sources = new Map([
      ["timer", '#include "timer.skel.h"'],
      ["xdp", ""],
    ]);
    const all = ["timer", "test_xdp", "opened_by_name"];
    expect(planSelftests(["*"], sources, all, "").progs).toEqual(["opened_by_name", "test_xdp", "timer"]);
    expect(planSelftests(["timer"], sources, all, "").progs).toEqual(["timer"]);
  });

  it("reads the programs the selftests Makefile builds", () => {
    const mk =
      "TEST_GEN_PROGS = test_verifier test_tag test_maps \\\n\ttest_progs\nTEST_GEN_PROGS += test_progs-cpuv4\n";
    expect(makefilePrograms(mk)).toEqual([
      "test_maps",
      "test_progs",
      "test_progs-cpuv4",
      "test_tag",
      "test_verifier",
    ]);
  });
});

describe("an unknown test among hundreds", () => {
  it("names the ten valid ones most like it, not all of them", () => {
    const names = [
      ...Array.from({ length: 40 }, (_, i) => `verifier_${i}`),
      "timer",
      "timer_mim",
      "time_tai",
    ];
    const shown = nearest(["timr*"], names);
    expect(shown.slice(0, 3)).toEqual(["timer", "time_tai", "timer_mim"]);
    expect(shown.at(-1)).toBe("... 33 more (test_progs -l lists them)");
    expect(nearest(["x"], ["a", "b"])).toEqual(["a", "b"]);
  });
});
