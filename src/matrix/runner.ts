import { randomUUID } from "node:crypto";
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { InfraError, KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { onInterrupt } from "../host/children.ts";
import type { ArchRun, Results } from "../report/results.ts";
import { matrixTable } from "../report/summary.ts";
import { markInterrupted } from "../report/verdict.ts";
import { newResults, writeReports } from "../report/write.ts";
import {
  type CellTester,
  cellSpec,
  type MachineSpec,
  newRun,
  prepareCell,
  remember,
  testCell,
  testPrepared,
} from "../run/cell.ts";
import type { Cell } from "./matrix.ts";

export type CellState = "waiting" | "building" | "built" | "testing" | "done";

/** One progress line naming every cell's state: readable on a terminal and in a CI log alike. */
export function progressLine(states: ReadonlyMap<string, CellState>): string {
  return [...states].map(([name, s]) => `${name} [${s}]`).join("  ");
}

/** Where a matrix's built cells are tested: one at a time on this machine, or all at once in a lab. */
export interface Engine {
  test: CellTester;
  /** A lab queues the jobs on its own devices; this machine runs one guest beside the next build. */
  parallel: boolean;
}

export const LOCAL: Engine = { test: testCell, parallel: false };

/** The run of a cell whose series could not be applied: an error of the `series` stage. */
function seriesError(cell: Cell, message: string): ArchRun {
  return {
    id: randomUUID(),
    startedAt: new Date().toISOString(),
    arch: cell.arch,
    cell: cell.name,
    suite: cell.suite,
    status: "error",
    error: { stage: "series", message },
    problems: [],
    harness: [],
    splats: [],
    tests: [],
    timings: {},
  };
}

/**
 * Runs the cells. Builds go one at a time here (two kernel builds on a small machine only slow each other
 * down); a cell's boot and tests run while the next cell builds. A cell that fails to build or boot is
 * reported as such and the others still run.
 */
export async function runMatrix(
  cells: Cell[],
  runDir: string,
  machine: MachineSpec,
  engine: Engine = LOCAL,
): Promise<Results> {
  const results = newResults(runDir);
  const states = new Map<string, CellState>(cells.map((c) => [c.name, "waiting"]));
  const set = (name: string, s: CellState) => {
    states.set(name, s);
    log(`matrix: ${progressLine(states)}`);
  };
  let testing: Promise<void> = Promise.resolve();
  const all: Promise<void>[] = [];
  let usage: KhilError | undefined;
  // On Ctrl-C, every cell under way is kept as it stands, interrupted, in its own directory and the matrix's.
  const underWay = new Map<string, { run: ArchRun; dir: string }>();
  const kept = onInterrupt((signal) => {
    for (const [name, c] of underWay)
      if (states.get(name) !== "done") {
        markInterrupted(c.run, signal);
        writeReports({ ...newResults(c.dir), runs: [c.run] });
      }
    writeReports(results);
  });
  for (const cell of cells) {
    const cellDir = join(runDir, cell.name);
    mkdirSync(cellDir, { recursive: true });
    const spec = await cellSpec(cell, machine, cellDir).catch((e: Error) => {
      // A series that does not apply to one cell's tree is that cell's error, not the matrix's end.
      if (!(cell.series && e instanceof KhilError && e.exitCode === 2)) throw e;
      const run = seriesError(cell, e.message);
      remember(machine.history, run, cellDir);
      results.runs.push(run);
      writeReports({ ...newResults(cellDir), runs: [run] });
      set(cell.name, "done");
      return undefined;
    });
    if (!spec) continue;
    const run = newRun(spec);
    results.runs.push(run);
    underWay.set(cell.name, { run, dir: cellDir });
    set(cell.name, "building");
    const prepared = await prepareCell(spec, run);
    set(cell.name, "built");
    const previous = engine.parallel ? Promise.resolve() : testing;
    testing = previous.then(async () => {
      if (prepared) {
        set(cell.name, "testing");
        // Whatever else escapes one cell's test is that cell's error: the other cells still run and report.
        // Bad input (exit 2) still ends the matrix with its one line, once the cells under way are written.
        await testPrepared(spec, run, prepared, engine.test).catch((e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          if (err instanceof KhilError && err.exitCode === 2 && !(err instanceof InfraError)) usage ??= err;
          else appendFileSync(join(cellDir, "khil-errors.log"), `${cell.name}: ${err.stack}\n`);
          const infra = err instanceof InfraError ? err : undefined;
          run.error = {
            stage: infra?.stage ?? "test",
            message: err.message,
            fault: infra?.fault ?? "harness",
          };
          run.status = "error";
          log(`${cell.name}: ${err.message}`);
        });
      }
      remember(machine.history, run, cellDir);
      set(cell.name, "done");
      // Each cell's directory is a run directory of its own too, for `khil report merge`.
      writeReports({ ...newResults(cellDir), runs: [run] });
      writeReports(results);
    });
    all.push(testing);
  }
  await Promise.all(all);
  kept();
  writeReports(results);
  if (usage) throw usage;
  process.stdout.write(`${matrixTable(results)}\n`);
  process.stdout.write(`results: ${runDir} (results.json, junit.xml, one directory per cell)\n`);
  return results;
}
