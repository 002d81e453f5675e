/**
 * A finished run against its cell's history: judged (judge.ts), then recorded (db.ts). Every command that
 * runs a cell ends each run here, so boot-and-test, matrix (local or LAVA), bisect steps, --each-patch and
 * --repeat all remember and are remembered the same way.
 */
import { createHash } from "node:crypto";
import { log } from "../common/log.ts";
import { readyMeasure } from "../guest/facts.ts";
import { findings, runFault } from "../report/fault.ts";
import { splatFingerprint } from "../report/fingerprint.ts";
import { type ArchRun, testName } from "../report/results.ts";
import { archStatus } from "../report/verdict.ts";
import { defaultHistoryFile, HistoryDb, type RecordedRun } from "./db.ts";
import { judgeMeasure, judgeTest, signature } from "./judge.ts";

/** An open results database, and the command whose runs it records. */
export interface History {
  db: HistoryDb;
  origin: string;
  /**
   * Whether a known flake failing as it flaked may be left uncounted. Not for bisect and --each-patch: their
   * question is where a failure began, and a flake excused there would hide the commit that made it.
   */
  quarantine?: boolean;
}

const NO_QUARANTINE = new Set(["bisect-step", "each-patch"]);

/**
 * `--history FILE|none`: the database to keep, or none. A database the user named that cannot be opened is
 * their input to fix; the default one failing costs only the history, with a line saying why.
 */
export function openHistory(file: string | undefined, origin: string): History | undefined {
  if (file === "none") return undefined;
  const quarantine = !NO_QUARANTINE.has(origin);
  if (file) return { db: new HistoryDb(file), origin, quarantine };
  try {
    return { db: new HistoryDb(defaultHistoryFile()), origin, quarantine };
  } catch (e) {
    log(`history: none kept for this run: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * The cell a run is compared within: what makes results comparable (arch, suite, tree, the variant: extra
 * config and kernel parameters, accelerator, engine), not the commit, which is what history compares across.
 */
export function cellKey(run: ArchRun): string {
  const accel = run.guest?.accel ?? "unbooted";
  const variant = run.variant ? ` +${run.variant}` : "";
  return `${run.arch} ${run.suite} ${run.treeName ?? run.tree ?? "?"}${variant} ${accel} ${run.engine?.name ?? "local"}`;
}

/**
 * Judges the run's failures and measures against the cell's past, sets its status again (a quarantined
 * flake no longer fails it), and records it. Without a database the run is left as it is.
 */
export function judgeAndRecord(h: History | undefined, run: ArchRun, runDir = ""): void {
  if (!h) return;
  judgeRun(h.db, run, h.quarantine ?? true);
  recordRun(h.db, run, h.origin, runDir);
}

/** The history's word on each failure and measure of the run, and its status with that word taken. */
export function judgeRun(db: HistoryDb, run: ArchRun, quarantine = true): void {
  const cell = cellKey(run);
  // Everything read first, then set at once: a database failing half way leaves the run as it was.
  const pastTests = db.pastTests(cell);
  const pastMeasures = db.pastMeasures(cell);
  const said = run.tests.map((t) => judgeTest(t, pastTests.get(testName(t)) ?? [], quarantine));
  const measures = measuresOf(run);
  const moved = measures
    .map((m) => judgeMeasure(m, pastMeasures.get(m.name) ?? []))
    .filter((s): s is string => Boolean(s));
  const trends = measures
    .map((m) => ({ name: m.name, unit: m.unit, past: pastMeasures.get(m.name) ?? [] }))
    .filter((t) => t.past.length);
  run.tests.forEach((t, i) => {
    const s = said[i];
    if (s) t.history = s;
    else delete t.history;
  });
  run.history = { cell, measures: moved, ...(trends.length ? { trends } : {}) };
  run.status = archStatus(run);
}

/** Records a run (again: one already held, by its id, is left as it is). */
export function recordRun(db: HistoryDb, run: ArchRun, origin: string, runDir = ""): void {
  db.record(recordOf(run, origin, runDir));
}

function recordOf(run: ArchRun, origin: string, runDir: string): RecordedRun {
  const cell = run.history?.cell ?? cellKey(run);
  return {
    run: {
      // A run from before ids were given is known by what it holds, so that merging it twice records it once.
      uid: run.id ?? createHash("sha256").update(JSON.stringify(run)).digest("hex").slice(0, 32),
      origin,
      runDir,
      startedAt: run.startedAt ?? "",
      cell,
      arch: run.arch,
      suite: run.suite,
      tree: run.treeName ?? run.tree ?? "?",
      commit: run.commit,
      configHash: run.guest?.configHash,
      variant: run.variant ?? "",
      accel: run.guest?.accel ?? "unbooted",
      engine: run.engine?.name ?? "local",
      kernelRelease: run.guest?.kernelRelease,
      status: run.status,
      // Decided here as writeReports decides it: the run is recorded before its reports are written.
      fault: runFault(run),
      error: run.error ? `${run.error.stage}: ${run.error.message}` : undefined,
      interrupted: run.interrupted,
      seconds: run.timings.total,
    },
    tests: run.tests.map((t) => ({
      name: testName(t),
      command: t.command,
      verdict: t.verdict,
      reason: t.reason,
      signature: signature(t),
      history: t.history?.text,
      quarantined: Boolean(t.history?.quarantined),
      durationMs: t.durationMs,
    })),
    splats: run.splats.map((s) => ({
      kind: s.kind,
      title: s.title,
      fingerprint: s.fingerprint ?? splatFingerprint(s),
      during: s.during,
    })),
    faults: findings(run).map((f) => ({ class: f.class, what: f.what, text: f.text })),
    measures: measuresOf(run),
    timings: Object.entries(run.timings).map(([name, seconds]) => ({ name, seconds })),
  };
}

/** What the tests measured, and the boot's own time to SSH: each is compared with its past in the cell. */
function measuresOf(run: ArchRun): RecordedRun["measures"] {
  const own = (run.measures ?? []).map((m) => ({
    name: m.name,
    unit: m.unit,
    n: m.n,
    p50: m.p50,
    p99: m.p99,
    max: m.max,
  }));
  const boot = run.guest?.bootSeconds;
  if (run.guest === undefined || boot === undefined) return own;
  return [...own, { name: readyMeasure(run.guest), unit: "s", n: 1, p50: boot, p99: boot, max: boot }];
}
