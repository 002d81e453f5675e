import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { execa } from "execa";
import { log } from "../common/log.ts";
import { HistoryDb } from "../history/db.ts";
import { recordRun } from "../history/history.ts";
import { projectRoot } from "../host/paths.ts";
import type { ArchRun } from "../report/results.ts";
import { type BenchRow, row, seconds } from "./stats.ts";

/** The history a busy cell gathers: issue 28's figure for `khil history` to stay under a second. */
const RUNS = 200;

/**
 * `khil history` over RUNS recorded runs (the bench's own warm run, recorded again under new ids), against
 * the raw side: the same rows read by one query in a bare node process.
 */
export async function historyRow(run: ArchRun, runDir: string, times: number): Promise<BenchRow> {
  log(`bench: khil history over ${RUNS} recorded runs`);
  const file = join(runDir, "bench-history.sqlite");
  const db = new HistoryDb(file);
  for (let i = 0; i < RUNS; i++)
    recordRun(
      db,
      { ...run, id: randomUUID(), startedAt: new Date(Date.now() - i * 60_000).toISOString() },
      "bench",
    );
  db.close();
  const query =
    "SELECT r.id, r.cell, t.name, t.verdict FROM tests t JOIN runs r ON r.id = t.run_id ORDER BY r.id";
  const raw = `const D = require("better-sqlite3"); new D(${JSON.stringify(file)}).prepare(${JSON.stringify(query)}).all();`;
  const khil: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < times; i++) {
    khil.push(
      await seconds(() => execa("node", [join(projectRoot, "bin/khil.js"), "history", "--history", file])),
    );
    bare.push(await seconds(() => execa("node", ["-e", raw], { cwd: projectRoot })));
  }
  return row(`khil history: ${RUNS} runs`, khil, bare, { seconds: 1 });
}
