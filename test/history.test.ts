import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { HistoryDb, SCHEMA_VERSION } from "../src/history/db.ts";
import { cellKey, judgeAndRecord } from "../src/history/history.ts";
import { judgeMeasure, QUARANTINE_PASSES, signature } from "../src/history/judge.ts";
import { historyText, historyView } from "../src/history/view.ts";
import { parseMeasures } from "../src/parse/measures.ts";
import { toJunit } from "../src/report/junit.ts";
import type { ArchRun, TestRecord, Verdict } from "../src/report/results.ts";
import { matrixTable, passRates, toMarkdown } from "../src/report/summary.ts";
import { archStatus } from "../src/report/verdict.ts";

const dir = () => mkdtempSync(join(tmpdir(), "khil-history-"));

const INCONCLUSIVE = "timer_lockup: the race did not happen within 50 tries (inconclusive)";

/** A run of the default cell as a real one is recorded: these tests, this verdict for timer_lockup. */
function run(
  i: number,
  lockup: { verdict: Verdict; reason?: string },
  opts: { commit?: string; latency?: number } = {},
): ArchRun {
  const t = (test: string, verdict: Verdict, reason?: string): TestRecord => ({
    arch: "x86_64",
    kernel: "6.12.57",
    accel: "tcg",
    suite: "bpf-timer",
    command: "test_progs",
    test,
    verdict,
    ...(reason ? { reason } : {}),
  });
  const r: ArchRun = {
    id: `run-${i}-${Math.random()}`,
    startedAt: new Date(Date.UTC(2026, 11, 1, 0, i)).toISOString(),
    arch: "x86_64",
    suite: "bpf-timer",
    tree: "linux-source-6.12 (6.12.57-1)",
    treeName: "linux-source-6.12",
    commit: opts.commit ?? "6.12.57-1",
    guest: {
      kernelRelease: "6.12.57",
      configHash: "abc",
      arch: "x86_64",
      machine: "q35",
      accel: "tcg",
      accelReason: "",
      bpfJitEnable: "1",
      clocksource: "tsc",
      hrtimerResolutionNs: 1,
      cpus: 2,
      bootSeconds: 2.5,
    },
    status: "error",
    problems: [],
    harness: [],
    splats: [],
    tests: [t("timer", "pass"), t("timer_lockup", lockup.verdict, lockup.reason)],
    measures: [
      {
        name: "bpf_timer_latency",
        unit: "ns",
        n: 1000,
        min: 1,
        p50: opts.latency ?? 60_000 + (i % 7) * 1000,
        p99: 200_000,
        max: 900_000,
        command: "timer_probe",
      },
    ],
    timings: { total: 60 },
  };
  r.status = archStatus(r);
  return r;
}

const lockup = (r: ArchRun) => r.tests.find((t) => t.test === "timer_lockup") as TestRecord;

/** A history: `n` runs with timer_lockup's verdicts as `pattern` says (`.` pass, `F` inconclusive failure). */
function withHistory(pattern: string): { db: HistoryDb; file: string } {
  const file = join(dir(), "history.sqlite");
  const db = new HistoryDb(file);
  [...pattern].forEach((c, i) => {
    judgeAndRecord(
      { db, origin: "boot-and-test" },
      run(i, c === "." ? { verdict: "pass" } : { verdict: "fail", reason: INCONCLUSIVE }),
    );
  });
  return { db, file };
}

describe("the results database", () => {
  it("creates its schema once, at the version the migrations reach, and reopens it as it is", () => {
    const file = join(dir(), "h.sqlite");
    new HistoryDb(file).close();
    const raw = new Database(file);
    expect(raw.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    raw.close();
    const again = new HistoryDb(file);
    expect(again.runs()).toEqual([]);
    again.close();
  });

  it("refuses a database a newer khil wrote, in one line saying what to do", () => {
    const file = join(dir(), "h.sqlite");
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => new HistoryDb(file)).toThrow(/written by a newer khil.*--history none/);
  });

  it("records a run once by its id, with its tests, measures and the cell it belongs to", () => {
    const { db } = withHistory("");
    const r = run(1, { verdict: "pass" });
    judgeAndRecord({ db, origin: "matrix" }, r);
    judgeAndRecord({ db, origin: "matrix" }, r);
    const runs = db.runs();
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      uid: r.id,
      origin: "matrix",
      cell: "x86_64 bpf-timer linux-source-6.12 tcg local",
      commit: "6.12.57-1",
      status: "passed",
    });
    expect(r.history?.cell).toBe(cellKey(r));
    const rec = db.recorded(runs[0]?.id ?? 0);
    expect(rec.tests.map((t) => [t.name, t.verdict])).toEqual([
      ["timer", "pass"],
      ["timer_lockup", "pass"],
    ]);
    expect(rec.measures.map((m) => m.name)).toEqual(["bpf_timer_latency", "boot_to_ssh"]);
  });
});

describe("flaky or regressed, from the history of the same test in the same cell", () => {
  it("a known flake failing the way it flaked before is reported, quarantined, and does not fail the run", () => {
    const { db } = withHistory(`${".".repeat(10)}F..F${".".repeat(5)}`);
    const now = run(100, { verdict: "fail", reason: INCONCLUSIVE.replace("50", "60") });
    judgeAndRecord({ db, origin: "boot-and-test" }, now);
    expect(lockup(now).history).toMatchObject({ state: "known-flaky", quarantined: true });
    expect(lockup(now).history?.text).toMatch(
      /known flaky here: 2 of its last 19 results did not pass \(last flake: run 14 .*quarantined until it passes 15 times in a row \(5 so far\): not counted/,
    );
    expect(now.status).toBe("passed");
    const results = { khil: "", startedAt: "", finishedAt: "", runDir: "", runs: [now] };
    expect(toJunit(results)).not.toMatch(/<failure|<error/);
    expect(toJunit(results)).toMatch(/fail, not counted: known flaky here/);
    expect(matrixTable(results)).toMatch(/timer_lockup\s+FLAKE/);
    expect(toMarkdown(results)).toMatch(/### Known flakes\n\n- x86_64: timer_lockup: known flaky here/);
  });

  it("a known flake failing in a way it never did here still fails the run", () => {
    const { db } = withHistory(`${".".repeat(10)}F.`);
    const now = run(100, { verdict: "fail", reason: "timer_lockup: bpf_timer_cancel returned -EDEADLK" });
    judgeAndRecord({ db, origin: "boot-and-test" }, now);
    expect(lockup(now).history?.quarantined).toBeUndefined();
    expect(lockup(now).history?.text).toMatch(
      /none of its flakes failed this way \(fail: .*\), so this failure counts/,
    );
    expect(now.status).toBe("failed");
  });

  it("a flake that has passed its quarantine out counts again", () => {
    const { db } = withHistory(`F${".".repeat(QUARANTINE_PASSES)}`);
    const now = run(100, { verdict: "fail", reason: INCONCLUSIVE });
    judgeAndRecord({ db, origin: "boot-and-test" }, now);
    // Out of quarantine, a test that passed that often and fails is a regression like any other.
    expect(lockup(now).history?.text).toBe(
      "regression: it passed 15 times in a row here, then first failed at this run",
    );
    expect(now.status).toBe("failed");
  });

  it("a failure on another commit followed by a pass is a bug and its fix, not a flake", () => {
    const file = join(dir(), "h.sqlite");
    const db = new HistoryDb(file);
    const h = { db, origin: "bisect-step" };
    for (let i = 0; i < 6; i++) judgeAndRecord(h, run(i, { verdict: "pass" }, { commit: `good${i}` }));
    judgeAndRecord(h, run(6, { verdict: "fail", reason: "broken" }, { commit: "bad" }));
    for (let i = 7; i < 12; i++) judgeAndRecord(h, run(i, { verdict: "pass" }, { commit: `fixed${i}` }));
    const now = run(12, { verdict: "fail", reason: "broken" }, { commit: "bad" });
    judgeAndRecord(h, now);
    expect(lockup(now).history?.state).toBe("regression");
    expect(now.status).toBe("failed");
  });

  it("a test that passed 20 times and now fails is a regression, named by the run and commit it first failed at", () => {
    const file = join(dir(), "h.sqlite");
    const db = new HistoryDb(file);
    const h = { db, origin: "boot-and-test" };
    for (let i = 0; i < 20; i++) judgeAndRecord(h, run(i, { verdict: "pass" }, { commit: `c${i}` }));
    const first = run(20, { verdict: "fail", reason: "timer_lockup: callback ran twice" }, { commit: "c20" });
    judgeAndRecord(h, first);
    expect(lockup(first).history?.text).toBe(
      "regression: it passed 20 times in a row here, then first failed at this run",
    );
    const second = run(
      21,
      { verdict: "fail", reason: "timer_lockup: callback ran twice" },
      { commit: "c21" },
    );
    judgeAndRecord(h, second);
    expect(lockup(second).history?.text).toBe(
      "regression: it passed 20 times in a row here, then first failed at run 21 of 2026-12-01 00:20, c20",
    );
    expect(second.status).toBe("failed");
    const md = toMarkdown({ khil: "", startedAt: "", finishedAt: "", runDir: "", runs: [second] });
    expect(md).toMatch(/### New regressions\n\n- x86_64: timer_lockup: regression: it passed 20 times/);
  });

  it("keeps exit codes and signals apart, and takes measured figures out", () => {
    expect(signature({ verdict: "fail", reason: "exit code 1" })).not.toBe(
      signature({ verdict: "fail", reason: "exit code 139" }),
    );
    expect(signature({ verdict: "fail", reason: "killed by signal 11" })).toBe("fail: killed by signal 11");
    expect(
      signature({ verdict: "fail", reason: "89 of 300 relative callbacks early, the earliest 434.9 us" }),
    ).toBe(
      signature({ verdict: "fail", reason: "73 of 300 relative callbacks early, the earliest 382.4 us" }),
    );
    // A flaky result and one rerun in vain are known by how their first attempt failed.
    expect(
      signature({ verdict: "flaky", reason: "failed, then passed on attempt 2", firstReason: "exit code 1" }),
    ).toBe("fail: exit code 1");
    expect(signature({ verdict: "fail", reason: "" })).toBeUndefined();
  });

  it("never excuses a failure that gives no reason, nor one only an old bug shared", () => {
    const file = join(dir(), "h.sqlite");
    const db = new HistoryDb(file);
    const h = { db, origin: "boot-and-test" };
    const bug = { verdict: "fail" as const, reason: "timer_lockup: bpf_timer_cancel returned -EDEADLK" };
    judgeAndRecord(h, run(0, bug, { commit: "c0" }));
    judgeAndRecord(h, run(1, { verdict: "pass" }, { commit: "c1" }));
    // Then a flake of another kind: a failure the same commit did not repeat.
    judgeAndRecord(h, run(2, { verdict: "fail", reason: INCONCLUSIVE }, { commit: "c2" }));
    judgeAndRecord(h, run(3, { verdict: "pass" }, { commit: "c2" }));
    const back = run(4, bug, { commit: "c4" });
    judgeAndRecord(h, back);
    expect(back.status).toBe("failed");
    const silent = run(5, { verdict: "fail" }, { commit: "c5" });
    judgeAndRecord(h, silent);
    expect(silent.status).toBe("failed");
    expect(lockup(silent).history?.text).toMatch(/\(no reason given\), so this failure counts/);
  });

  it("takes no flake from a tree without a commit, or with changes not committed", () => {
    for (const commit of ["", "abc-dirty"]) {
      const file = join(dir(), "h.sqlite");
      const db = new HistoryDb(file);
      const h = { db, origin: "boot-and-test" };
      for (let i = 0; i < 3; i++) {
        const r = run(i, i % 2 ? { verdict: "pass" } : { verdict: "fail", reason: "broken" });
        if (commit) r.commit = commit;
        else delete r.commit;
        judgeAndRecord(h, r);
      }
      const now = run(3, { verdict: "fail", reason: "broken" });
      if (commit) now.commit = commit;
      else delete now.commit;
      judgeAndRecord(h, now);
      expect(now.status).toBe("failed");
    }
  });

  it("bisect's steps name a known flake but do not excuse it: where a failure began is their question", () => {
    const { db } = withHistory(`${".".repeat(10)}F..F${".".repeat(5)}`);
    const now = run(100, { verdict: "fail", reason: INCONCLUSIVE });
    judgeAndRecord({ db, origin: "bisect-step", quarantine: false }, now);
    expect(lockup(now).history).toMatchObject({ state: "known-flaky" });
    expect(lockup(now).history?.quarantined).toBeUndefined();
    expect(now.status).toBe("failed");
  });

  it("a matrix variant with its own kernel parameters is a cell of its own", () => {
    const a = run(0, { verdict: "pass" });
    const b = { ...run(0, { verdict: "pass" }), variant: "sysctl.net.core.bpf_jit_harden=2" };
    expect(cellKey(a)).not.toBe(cellKey(b));
    expect(cellKey(b)).toBe("x86_64 bpf-timer linux-source-6.12 +sysctl.net.core.bpf_jit_harden=2 tcg local");
  });

  it("a kernel splat fails the run whatever the history says of its test", () => {
    const { db } = withHistory(`${".".repeat(10)}F.`);
    const now = run(100, { verdict: "fail", reason: INCONCLUSIVE });
    now.splats.push({
      kind: "warning",
      title: "WARNING: at kernel/bpf/helpers.c:1163",
      excerpt: "",
      during: "timer_lockup",
      source: "console",
    });
    judgeAndRecord({ db, origin: "boot-and-test" }, now);
    expect(lockup(now).history?.quarantined).toBe(true);
    expect(now.status).toBe("failed");
  });
});

describe("measures against the cell's history", () => {
  it("reports a median outside its history's spread, and not one within it", () => {
    const past = [60_000, 61_000, 59_500, 62_000, 60_500, 61_500];
    expect(judgeMeasure({ name: "bpf_timer_latency", unit: "ns", p50: 61_200 }, past)).toBeUndefined();
    expect(judgeMeasure({ name: "bpf_timer_latency", unit: "ns", p50: 2_060_000 }, past)).toBe(
      "bpf_timer_latency median 2.06 ms is above its history here (median 60.8 us, 6 runs from 59.5 us to 62.0 us)",
    );
    expect(judgeMeasure({ name: "x", unit: "ns", p50: 1e9 }, past.slice(0, 4))).toBeUndefined();
  });

  it("a kernel that delays callbacks is reported against the cell's history (the probe's real outputs)", () => {
    const probe = (f: string) =>
      parseMeasures(readFileSync(join(import.meta.dirname, "fixtures/ktap", f), "utf8")).measures.map(
        (m) => ({
          ...m,
          command: "timer_probe",
        }),
      );
    const { db } = withHistory("");
    const h = { db, origin: "boot-and-test" };
    // Five sound kernels' runs as captured from real guests, then the kernel whose callbacks run 2 ms late.
    const sound = [
      "x86_64-6.12-timer-probe.log",
      "x86_64-6.1-timer-probe.log",
      "x86_64-6.12-timer-probe-broken-cancel.log",
      "arm64-6.12-timer-probe.log",
      "arm64-6.1-timer-probe.log",
    ];
    sound.forEach((f, i) => {
      const r = run(i, { verdict: "pass" });
      r.measures = probe(f);
      judgeAndRecord(h, r);
      expect(r.history?.measures).toEqual([]);
    });
    const late = run(10, { verdict: "pass" });
    late.measures = probe("x86_64-6.12-timer-probe-late.log");
    judgeAndRecord(h, late);
    expect(late.history?.measures).toContainEqual(
      expect.stringMatching(
        /^bpf_timer_latency median 2\.11 ms is above its history here \(median 92\.2 us, 5 runs from 68\.6 us to 104\.8 us\)$/,
      ),
    );
    const md = toMarkdown({ khil: "", startedAt: "", finishedAt: "", runDir: "", runs: [late] });
    expect(md).toMatch(/### Measures that moved\n\n- x86_64: bpf_timer_latency median 2\.11 ms/);
  });
});

describe("khil history's view", () => {
  it("shows each test's last results, flakes, quarantine and first failure; each measure's trend", () => {
    const { db } = withHistory(`${".".repeat(5)}F..`);
    const v = historyView(db.results(), db.measures());
    const lk = v.tests.find((t) => t.test === "timer_lockup");
    expect(lk).toMatchObject({ runs: 8, last: ".....F..", flakes: 1, quarantined: true, passesInARow: 2 });
    expect(v.measures.map((m) => m.measure).sort()).toEqual(["boot_to_ssh", "bpf_timer_latency"]);
    expect(historyText(v)).toMatch(
      /timer_lockup\s+8\s+\.\.\.\.\.F\.\.\s+13 %\s+1\s+quarantined \(2\/15 passes\)/,
    );
  });

  it("reads two hundred runs back (the bench times it)", () => {
    const { db, file } = withHistory(".".repeat(200));
    expect(historyView(db.results(), db.measures()).tests.every((t) => t.runs === 200)).toBe(true);
    expect(readFileSync(file).length).toBeGreaterThan(0);
  });
});

describe("--repeat's pass rates", () => {
  it("gives each test's rate over the repeated runs of a cell", () => {
    const runs = [".", "F", ".", ".", "F"].map((c, i) =>
      run(i, c === "." ? { verdict: "pass" } : { verdict: "fail", reason: "random" }),
    );
    const text = passRates({ khil: "", startedAt: "", finishedAt: "", runDir: "", runs }) ?? "";
    expect(text).toMatch(/x86_64\s+timer\s+5\/5\s+1\.00/);
    expect(text).toMatch(/x86_64\s+timer_lockup\s+3\/5\s+0\.60/);
    expect(
      passRates({ khil: "", startedAt: "", finishedAt: "", runDir: "", runs: runs.slice(0, 1) }),
    ).toBeUndefined();
  });
});
