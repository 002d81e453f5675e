import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { validateWorkflow } from "@action-validator/core";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../src/host/paths.ts";
import { githubWorkflow } from "../src/matrix/github.ts";
import { expandMatrix, loadMatrix } from "../src/matrix/matrix.ts";
import { progressLine } from "../src/matrix/runner.ts";
import { mergeResults } from "../src/report/merge.ts";
import type { ArchRun, Results } from "../src/report/results.ts";
import { matrixTable, toMarkdown } from "../src/report/summary.ts";
import { fragmentPath } from "../src/run/suite.ts";

const matrixFile = join(projectRoot, "matrix.yaml");

describe("matrix", () => {
  it("expands the default matrix into x86_64 and arm64 cells of each JIT variant", () => {
    const cells = expandMatrix(loadMatrix(matrixFile));
    expect(cells.map((c) => c.name)).toEqual([
      "x86_64-6.12-bpf-timer-default",
      "arm64-6.12-bpf-timer-default",
      "x86_64-6.12-bpf-timer-jit-harden",
      "arm64-6.12-bpf-timer-jit-harden",
      "x86_64-6.12-bpf-timer-jit-off",
      "arm64-6.12-bpf-timer-jit-off",
    ]);
    const off = cells.find((c) => c.variant === "jit-off");
    expect([off?.fragments, off?.append]).toEqual([["jit-off.config"], ["sysctl.net.core.bpf_jit_enable=0"]]);
    expect(cells.find((c) => c.variant === "jit-harden")?.append).toEqual([
      "sysctl.net.core.bpf_jit_harden=2",
    ]);
    // A variant names its fragments as suites do: files of kernel-config/, or paths.
    expect(existsSync(fragmentPath("jit-off.config"))).toBe(true);
    expect(fragmentPath("/tmp/mine.config")).toBe("/tmp/mine.config");
  });

  it("names cells whose kernel and suite are paths by their last component", () => {
    const cells = expandMatrix({
      arch: ["arm64"],
      kernel: ["/src/linux/"],
      suite: ["test/fixtures/suites/flaky.yaml"],
      variant: { debug: { config: ["debug.config"], append: [] } },
      flavour: ["test_progs"],
    });
    expect(cells.map((c) => c.name)).toEqual(["arm64-linux-flaky-debug"]);
  });

  it("gives every cell the matrix's shards, and none where it has one or none", () => {
    const m = {
      arch: ["x86_64"],
      kernel: ["6.12"],
      suite: ["bpf-full"],
      variant: {},
      flavour: ["test_progs"],
    };
    expect(
      expandMatrix({ ...m, variant: { default: { config: [], append: [] } }, shards: 3 })[0]?.shards,
    ).toBe(3);
    expect(
      expandMatrix({ ...m, variant: { default: { config: [], append: [] } }, shards: 1 })[0]?.shards,
    ).toBeUndefined();
  });

  it("runs each cell once per test_progs flavour, named by it unless plain", () => {
    const cells = expandMatrix({
      arch: ["x86_64", "arm64"],
      kernel: ["6.12"],
      suite: ["bpf-timer"],
      variant: { default: { config: [], append: [] } },
      flavour: ["test_progs", "cpuv4"],
    });
    expect(cells.map((c) => [c.name, c.flavour])).toEqual([
      ["x86_64-6.12-bpf-timer-default", undefined],
      ["arm64-6.12-bpf-timer-default", undefined],
      ["x86_64-6.12-bpf-timer-default-cpuv4", "cpuv4"],
      ["arm64-6.12-bpf-timer-default-cpuv4", "cpuv4"],
    ]);
  });

  it("crosses each kernel with each series of the series axis", () => {
    const cells = expandMatrix({
      arch: ["x86_64"],
      kernel: ["6.12", "6.1"],
      suite: ["bpf-timer"],
      variant: { default: { config: [], append: [] } },
      series: { "timer-fix-v2": "patches/v2.mbox" },
      flavour: ["test_progs"],
    });
    expect(cells.map((c) => [c.name, c.series?.path])).toEqual([
      ["x86_64-6.12-timer-fix-v2-bpf-timer-default", "patches/v2.mbox"],
      ["x86_64-6.1-timer-fix-v2-bpf-timer-default", "patches/v2.mbox"],
    ]);
  });

  it("shows every cell's state on one line", () => {
    expect(
      progressLine(
        new Map([
          ["a", "building"],
          ["b", "waiting"],
        ]),
      ),
    ).toBe("a [building]  b [waiting]");
  });
});

describe("GitHub workflow", () => {
  const text = githubWorkflow(expandMatrix(loadMatrix(matrixFile)), "matrix.yaml");

  it("passes GitHub's published workflow JSON schema (SchemaStore, via @action-validator/core)", () => {
    expect(validateWorkflow(text).errors).toEqual([]);
  });

  it("is what the project's own .github/workflows holds", () => {
    expect(readFileSync(join(projectRoot, ".github/workflows/khil-matrix.yml"), "utf8")).toBe(text);
  });

  it("khil's own test workflow (.ci/run, screenshots attached) passes the schema too", () => {
    const own = readFileSync(join(projectRoot, ".github/workflows/test.yml"), "utf8");
    expect(validateWorkflow(own).errors).toEqual([]);
    expect(own).toMatch(/run: \.ci\/run\n/);
    expect(own).toMatch(/path: runs\/screenshots\//);
  });

  it("a broken workflow does not pass the schema", () => {
    expect(validateWorkflow(text.replace("runs-on:", "runs_on:")).errors.length).toBeGreaterThan(0);
  });
});

function run(cell: string, verdicts: Record<string, ArchRun["tests"][number]["verdict"]>): ArchRun {
  const tests = Object.entries(verdicts).map(([test, verdict]) => ({
    arch: cell.split("-")[0] ?? "",
    kernel: "6.12.117",
    accel: "tcg",
    suite: "bpf-timer",
    command: "test_progs",
    test,
    verdict,
  }));
  const failed = tests.some((t) => t.verdict === "fail");
  return {
    arch: tests[0]?.arch ?? "",
    cell,
    suite: "bpf-timer",
    status: failed ? "failed" : "passed",
    problems: [],
    splats: [],
    tests,
    timings: {},
  };
}

describe("merged reports", () => {
  const results = (runDir: string, r: ArchRun): Results => ({
    khil: "0.1.0",
    startedAt: runDir,
    finishedAt: "",
    runDir,
    runs: [r],
  });
  const merged = mergeResults(
    [
      results("a", run("x86_64-6.12", { timer: "pass", timer_mim: "pass" })),
      results("b", run("arm64-6.12", { timer: "pass", timer_mim: "fail" })),
    ],
    "m",
  );

  it("keeps every cell and renders one table, a row per test", () => {
    expect(merged.runs.map((r) => r.cell)).toEqual(["x86_64-6.12", "arm64-6.12"]);
    const table = matrixTable(merged).split("\n");
    expect(table[0]).toMatch(/^test\s+x86_64-6.12\s+arm64-6.12$/);
    expect(table[2]).toMatch(/^timer_mim\s+PASS\s+FAIL$/);
    expect(table[3]).toMatch(/^status\s+PASSED\s+FAILED$/);
    expect(toMarkdown(merged)).toContain("| timer_mim | PASS | FAIL |");
  });

  it("a matrix of many tests shows those that differ between cells and counts the rest", () => {
    const many = (fail: boolean) =>
      Object.fromEntries(
        Array.from({ length: 40 }, (_, i) => [
          `t${i}`,
          i === 7 && fail ? "fail" : i === 3 ? "skip" : i === 9 ? "notrun" : "pass",
        ]),
      ) as Record<string, "pass" | "fail" | "skip" | "notrun">;
    const big = mergeResults(
      [results("a", run("x86_64-6.12", many(false))), results("b", run("arm64-6.12", many(true)))],
      "m",
    );
    const table = matrixTable(big).split("\n");
    expect(table[1]).toMatch(/^t7\s+PASS\s+FAIL$/);
    // A test that failed everywhere keeps its row: only what passed or skipped alike is summed up.
    expect(table[2]).toMatch(/^t9\s+NOTRUN\s+NOTRUN$/);
    expect(table[3]).toMatch(/^status/);
    expect(table).toContain("and 38 tests the same in every cell: 37 PASS, 1 SKIP");
  });
});
