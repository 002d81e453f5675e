/**
 * The results database: every run of every cell, kept in SQLite (`$KHIL_CACHE/history.sqlite` unless
 * `--history FILE`), so that a failure can be told from a flake and a measure from its own past. Several khil
 * runs write to one database at once (WAL, and a busy wait), and the schema only ever moves forward through
 * the migrations below, recorded in SQLite's user_version.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { KhilError } from "../common/errors.ts";
import { cacheDir } from "../host/paths.ts";
import type { Verdict } from "../report/results.ts";

/** Each entry moves the schema one version on; never edit one that has shipped, add the next. */
const MIGRATIONS = [
  `CREATE TABLE runs (
     id INTEGER PRIMARY KEY,
     uid TEXT NOT NULL UNIQUE,
     origin TEXT NOT NULL,
     run_dir TEXT NOT NULL,
     started_at TEXT NOT NULL,
     cell TEXT NOT NULL,
     arch TEXT NOT NULL,
     suite TEXT NOT NULL,
     tree TEXT NOT NULL,
     commit_id TEXT,
     config_hash TEXT,
     variant TEXT NOT NULL,
     accel TEXT NOT NULL,
     engine TEXT NOT NULL,
     kernel_release TEXT,
     status TEXT NOT NULL,
     fault TEXT,
     error TEXT,
     interrupted TEXT,
     seconds REAL
   );
   CREATE INDEX runs_by_cell ON runs (cell, id);
   CREATE TABLE tests (
     run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     command TEXT NOT NULL,
     verdict TEXT NOT NULL,
     reason TEXT,
     signature TEXT,
     history TEXT,
     quarantined INTEGER NOT NULL DEFAULT 0,
     duration_ms REAL
   );
   CREATE INDEX tests_by_run ON tests (run_id);
   CREATE TABLE splats (
     run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     kind TEXT NOT NULL,
     title TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     during TEXT NOT NULL
   );
   CREATE INDEX splats_by_fingerprint ON splats (fingerprint);
   CREATE TABLE faults (
     run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     class TEXT NOT NULL,
     what TEXT NOT NULL,
     text TEXT NOT NULL
   );
   CREATE TABLE measures (
     run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     unit TEXT NOT NULL,
     n INTEGER NOT NULL,
     p50 REAL NOT NULL,
     p99 REAL NOT NULL,
     max REAL NOT NULL
   );
   CREATE INDEX measures_by_run ON measures (run_id);
   CREATE TABLE timings (
     run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     name TEXT NOT NULL,
     seconds REAL NOT NULL
   );`,
  // History is read in the order runs started (a merged database's runs came in the order merged).
  "CREATE INDEX runs_by_cell_start ON runs (cell, started_at);",
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function defaultHistoryFile(): string {
  return join(cacheDir(), "history.sqlite");
}

/** A run as the database holds it: one row of `runs`, the rest by run id. */
export interface RunRow {
  uid: string;
  origin: string;
  runDir: string;
  startedAt: string;
  cell: string;
  arch: string;
  suite: string;
  tree: string;
  commit?: string;
  configHash?: string;
  variant: string;
  accel: string;
  engine: string;
  kernelRelease?: string;
  status: string;
  fault?: string;
  error?: string;
  interrupted?: string;
  seconds?: number;
}

export interface TestRow {
  name: string;
  command: string;
  verdict: Verdict;
  reason?: string;
  signature?: string;
  history?: string;
  quarantined: boolean;
  durationMs?: number;
}

export interface RecordedRun {
  run: RunRow;
  tests: TestRow[];
  splats: { kind: string; title: string; fingerprint: string; during: string }[];
  faults: { class: string; what: string; text: string }[];
  measures: { name: string; unit: string; n: number; p50: number; p99: number; max: number }[];
  timings: { name: string; seconds: number }[];
}

/** One past result of a test, as the judge reads it. */
export interface PastResult {
  run: number;
  at: string;
  commit?: string;
  verdict: Verdict;
  signature?: string;
}

const nul = <T>(v: T | undefined): T | null => (v === undefined ? null : v);
const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

export class HistoryDb {
  readonly file: string;
  private readonly db: Database.Database;

  constructor(file: string) {
    this.file = file;
    try {
      mkdirSync(dirname(file), { recursive: true });
      this.db = new Database(file, { timeout: 30_000 });
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("foreign_keys = ON");
      this.migrate();
    } catch (e) {
      throw new KhilError(
        `--history ${file}: ${(e as Error).message} (give another file, or --history none to keep no history)`,
      );
    }
  }

  private migrate(): void {
    const at = this.db.pragma("user_version", { simple: true }) as number;
    if (at > MIGRATIONS.length)
      throw new Error(`written by a newer khil (schema ${at}, this one knows ${MIGRATIONS.length})`);
    // One transaction per step, so that two runs opening a new database at once cannot both migrate it.
    for (let v = at; v < MIGRATIONS.length; v++)
      this.db
        .transaction(() => {
          if ((this.db.pragma("user_version", { simple: true }) as number) !== v) return;
          this.db.exec(MIGRATIONS[v] ?? "");
          this.db.pragma(`user_version = ${v + 1}`);
        })
        .immediate();
  }

  /** Records a run once: a run already held (the same uid, as when merging databases again) is left. */
  record(r: RecordedRun): number | undefined {
    return this.db
      .transaction(() => {
        const row = r.run;
        const info = this.db
          .prepare(
            `INSERT OR IGNORE INTO runs (uid, origin, run_dir, started_at, cell, arch, suite, tree, commit_id,
               config_hash, variant, accel, engine, kernel_release, status, fault, error, interrupted, seconds)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            row.uid,
            row.origin,
            row.runDir,
            row.startedAt,
            row.cell,
            row.arch,
            row.suite,
            row.tree,
            nul(row.commit),
            nul(row.configHash),
            row.variant,
            row.accel,
            row.engine,
            nul(row.kernelRelease),
            row.status,
            nul(row.fault),
            nul(row.error),
            nul(row.interrupted),
            nul(row.seconds),
          );
        if (info.changes === 0) return undefined;
        const id = Number(info.lastInsertRowid);
        const test = this.db.prepare(
          `INSERT INTO tests (run_id, name, command, verdict, reason, signature, history, quarantined, duration_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        for (const t of r.tests)
          test.run(
            id,
            t.name,
            t.command,
            t.verdict,
            nul(t.reason),
            nul(t.signature),
            nul(t.history),
            t.quarantined ? 1 : 0,
            nul(t.durationMs),
          );
        const splat = this.db.prepare("INSERT INTO splats VALUES (?, ?, ?, ?, ?)");
        for (const s of r.splats) splat.run(id, s.kind, s.title, s.fingerprint, s.during);
        const fault = this.db.prepare("INSERT INTO faults VALUES (?, ?, ?, ?)");
        for (const f of r.faults) fault.run(id, f.class, f.what, f.text);
        const measure = this.db.prepare("INSERT INTO measures VALUES (?, ?, ?, ?, ?, ?, ?)");
        for (const m of r.measures) measure.run(id, m.name, m.unit, m.n, m.p50, m.p99, m.max);
        const timing = this.db.prepare("INSERT INTO timings VALUES (?, ?, ?)");
        for (const t of r.timings) timing.run(id, t.name, t.seconds);
        return id;
      })
      .immediate();
  }

  /** Each test's results in the cell's last `runs` runs, oldest first, by test name. */
  pastTests(cell: string, runs = 200): Map<string, PastResult[]> {
    const rows = this.db
      .prepare(
        `SELECT r.id, r.started_at, r.commit_id, t.name, t.verdict, t.signature
         FROM tests t JOIN runs r ON r.id = t.run_id
         WHERE r.id IN (SELECT id FROM runs WHERE cell = ? ORDER BY started_at DESC, id DESC LIMIT ?)
         ORDER BY r.started_at, r.id`,
      )
      .all(cell, runs) as {
      id: number;
      started_at: string;
      commit_id: string | null;
      name: string;
      verdict: Verdict;
      signature: string | null;
    }[];
    const out = new Map<string, PastResult[]>();
    for (const r of rows) {
      const list = out.get(r.name) ?? [];
      list.push({
        run: r.id,
        at: r.started_at,
        commit: opt(r.commit_id),
        verdict: r.verdict,
        signature: opt(r.signature),
      });
      out.set(r.name, list);
    }
    return out;
  }

  /** Each measure's medians in the cell's last `runs` runs, oldest first. */
  pastMeasures(cell: string, runs = 50): Map<string, number[]> {
    const rows = this.db
      .prepare(
        `SELECT m.name, m.p50 FROM measures m
         JOIN runs r ON r.id = m.run_id
         WHERE m.run_id IN (SELECT id FROM runs WHERE cell = ? ORDER BY started_at DESC, id DESC LIMIT ?)
         ORDER BY r.started_at, r.id`,
      )
      .all(cell, runs) as { name: string; p50: number }[];
    const out = new Map<string, number[]>();
    for (const r of rows) out.set(r.name, [...(out.get(r.name) ?? []), r.p50]);
    return out;
  }

  /** The runs, newest last: all of them, or those of the cells matching `cell` (a LIKE pattern). */
  runs(cellLike = "%"): (RunRow & { id: number })[] {
    const rows = this.db
      .prepare("SELECT * FROM runs WHERE cell LIKE ? ESCAPE '\\' ORDER BY started_at, id")
      .all(cellLike) as Record<string, string | number | null>[];
    return rows.map((r) => runRow(r));
  }

  /** Everything recorded of one run, to copy it into another database. */
  recorded(id: number): RecordedRun {
    const run = runRow(this.db.prepare("SELECT * FROM runs WHERE id = ?").get(id) as Record<string, never>);
    const all = (table: string) =>
      this.db.prepare(`SELECT * FROM ${table} WHERE run_id = ?`).all(id) as Record<string, unknown>[];
    return {
      run,
      tests: all("tests").map((t) => ({
        name: t.name as string,
        command: t.command as string,
        verdict: t.verdict as Verdict,
        reason: opt(t.reason as string | null),
        signature: opt(t.signature as string | null),
        history: opt(t.history as string | null),
        quarantined: t.quarantined === 1,
        durationMs: opt(t.duration_ms as number | null),
      })),
      splats: all("splats") as RecordedRun["splats"],
      faults: all("faults") as RecordedRun["faults"],
      measures: all("measures") as RecordedRun["measures"],
      timings: all("timings") as RecordedRun["timings"],
    };
  }

  /** Every test result of the cells matching `cellLike`, oldest first, for `khil history`. */
  results(cellLike = "%"): (PastResult & { cell: string; name: string })[] {
    const rows = this.db
      .prepare(
        `SELECT r.id AS run, r.started_at AS at, r.commit_id, r.cell, t.name, t.verdict, t.signature
         FROM tests t JOIN runs r ON r.id = t.run_id WHERE r.cell LIKE ? ESCAPE '\\' ORDER BY r.started_at, r.id`,
      )
      .all(cellLike) as {
      run: number;
      at: string;
      commit_id: string | null;
      cell: string;
      name: string;
      verdict: Verdict;
      signature: string | null;
    }[];
    return rows.map((r) => ({
      run: r.run,
      at: r.at,
      commit: opt(r.commit_id),
      cell: r.cell,
      name: r.name,
      verdict: r.verdict,
      signature: opt(r.signature),
    }));
  }

  /** Every measure of the cells matching `cellLike`, oldest first. */
  measures(cellLike = "%"): { run: number; cell: string; name: string; unit: string; p50: number }[] {
    return this.db
      .prepare(
        `SELECT r.id AS run, r.cell, m.name, m.unit, m.p50 FROM measures m JOIN runs r ON r.id = m.run_id
         WHERE r.cell LIKE ? ESCAPE '\\' ORDER BY r.started_at, r.id`,
      )
      .all(cellLike) as { run: number; cell: string; name: string; unit: string; p50: number }[];
  }

  close(): void {
    this.db.close();
  }
}

function runRow(r: Record<string, string | number | null>): RunRow & { id: number } {
  const s = (k: string) => (r[k] === null || r[k] === undefined ? undefined : String(r[k]));
  return {
    id: Number(r.id),
    uid: String(r.uid),
    origin: String(r.origin),
    runDir: String(r.run_dir),
    startedAt: String(r.started_at),
    cell: String(r.cell),
    arch: String(r.arch),
    suite: String(r.suite),
    tree: String(r.tree),
    commit: s("commit_id"),
    configHash: s("config_hash"),
    variant: String(r.variant),
    accel: String(r.accel),
    engine: String(r.engine),
    kernelRelease: s("kernel_release"),
    status: String(r.status),
    fault: s("fault"),
    error: s("error"),
    interrupted: s("interrupted"),
    seconds: r.seconds === null ? undefined : Number(r.seconds),
  };
}
