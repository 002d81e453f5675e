import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { log } from "../common/log.ts";
import type { Results } from "../report/results.ts";
import { matrixTable } from "../report/summary.ts";
import { newResults, writeReports } from "../report/write.ts";
import { cellSpec, type MachineSpec, newRun, prepareCell, testCell } from "../run/cell.ts";
import type { Cell } from "./matrix.ts";

export type CellState = "waiting" | "building" | "built" | "testing" | "done";

/** One progress line naming every cell's state: readable on a terminal and in a CI log alike. */
export function progressLine(states: ReadonlyMap<string, CellState>): string {
  return [...states].map(([name, s]) => `${name} [${s}]`).join("  ");
}

/**
 * Runs the cells on this machine. Builds go one at a time (two kernel builds on a small machine only slow
 * each other down); a cell's boot and tests run while the next cell builds. A cell that fails to build or
 * boot is reported as such and the others still run.
 */
export async function runMatrix(cells: Cell[], runDir: string, machine: MachineSpec): Promise<Results> {
  const results = newResults(runDir);
  const states = new Map<string, CellState>(cells.map((c) => [c.name, "waiting"]));
  const set = (name: string, s: CellState) => {
    states.set(name, s);
    log(`matrix: ${progressLine(states)}`);
  };
  let testing: Promise<void> = Promise.resolve();
  for (const cell of cells) {
    const cellDir = join(runDir, cell.name);
    mkdirSync(cellDir, { recursive: true });
    const spec = await cellSpec(cell, machine, cellDir);
    const run = newRun(spec);
    results.runs.push(run);
    set(cell.name, "building");
    const prepared = await prepareCell(spec, run);
    set(cell.name, "built");
    const previous = testing;
    testing = previous.then(async () => {
      if (prepared) {
        set(cell.name, "testing");
        await testCell(spec, run, prepared);
      }
      set(cell.name, "done");
      // Each cell's directory is a run directory of its own too, for `khil report merge`.
      writeReports({ ...newResults(cellDir), runs: [run] });
      writeReports(results);
    });
  }
  await testing;
  writeReports(results);
  process.stdout.write(`${matrixTable(results)}\n`);
  process.stdout.write(`results: ${runDir} (results.json, junit.xml, one directory per cell)\n`);
  return results;
}
