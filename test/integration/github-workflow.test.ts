import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { HistoryDb } from "../../src/history/db.ts";
import { projectRoot } from "../../src/host/paths.ts";
import type { Results } from "../../src/report/results.ts";
import { HOUR } from "../helpers.ts";

interface Step {
  run?: string;
  uses?: string;
  id?: string;
}

const CELL = "x86_64-6.12-bpf-timer-default";
/** The workflow's expression for the cell, as the runner fills it in. */
const CELL_EXPRESSION = `$\{{ matrix.cell }}`;
const workflow = parse(readFileSync(join(projectRoot, ".github/workflows/khil-matrix.yml"), "utf8")) as {
  jobs: Record<string, { steps: Step[] }>;
};

/**
 * Each `run:` step of a job, as the runner runs it: bash -e in the checkout, `${{ matrix.cell }}` filled in,
 * GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files. `uses:` steps are GitHub's own actions and are not run here.
 */
async function runSteps(steps: Step[], dir: string, github: Record<string, string>) {
  for (const s of steps.filter((x) => x.run)) {
    const script = (s.run ?? "").replaceAll(CELL_EXPRESSION, CELL);
    const r = await execa("bash", ["-e", "-c", script], { cwd: dir, reject: false, all: true, env: github });
    expect(r.exitCode, `${script}\n${r.all}`).toBe(0);
  }
}

describe("the generated GitHub workflow", () => {
  const scratch = mkdtempSync(join(tmpdir(), "khil-gh-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it(
    "runs, step by step in a fresh clone, a cell and then the report that merges it",
    async () => {
      const clone = join(scratch, "clone");
      await execa("git", ["clone", "-q", projectRoot, clone]);
      const github = {
        GITHUB_OUTPUT: join(scratch, "output"),
        GITHUB_STEP_SUMMARY: join(scratch, "summary"),
      };
      await runSteps(workflow.jobs.cell?.steps ?? [], clone, github);
      const outputs = readFileSync(github.GITHUB_OUTPUT, "utf8");
      expect(outputs).toMatch(/^trees=khil-trees-[0-9a-f]{16}$/m);
      expect(outputs).toMatch(new RegExp(`^ccache=khil-ccache-${CELL}-[0-9a-f]{16}$`, "m"));
      const cellDir = join(clone, "runs", CELL);
      const results = JSON.parse(readFileSync(join(cellDir, "results.json"), "utf8")) as Results;
      expect(results.runs.map((r) => [r.cell, r.status])).toEqual([[CELL, "passed"]]);
      // The report job downloads the cells' artifacts into cells/khil-<cell>.
      mkdirSync(join(clone, "cells"));
      cpSync(cellDir, join(clone, "cells", `khil-${CELL}`), { recursive: true });
      await runSteps(workflow.jobs.report?.steps ?? [], clone, github);
      expect(readFileSync(github.GITHUB_STEP_SUMMARY, "utf8")).toMatch(
        /## khil results[\s\S]*\| \*\*status\*\* \| \*\*passed\*\* \|/,
      );
      // The merged database holds the cell's run once (from its database and its results.json alike), for the
      // next workflow run to be judged against.
      const db = new HistoryDb(join(clone, "history", "history.sqlite"));
      expect(db.runs().map((r) => [r.uid, r.status])).toEqual([[results.runs[0]?.id, "passed"]]);
      db.close();
    },
    HOUR,
  );
});
