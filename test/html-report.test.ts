import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bisectHtml } from "../src/bisect/html.ts";
import { HistoryDb } from "../src/history/db.ts";
import { judgeRun, recordRun } from "../src/history/history.ts";
import { runsDir } from "../src/host/paths.ts";
import { parseMeasures } from "../src/parse/measures.ts";
import type { Results } from "../src/report/results.ts";
import { writeReports } from "../src/report/write.ts";
import { launchChromium, openReport } from "./browser.ts";

const fixture = (f: string) =>
  JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/results", f), "utf8")) as Results;

/** A results.json written again, the way every run writes its reports, into a directory of its own. */
function written(r: Results): string {
  const dir = mkdtempSync(join(tmpdir(), "khil-html-"));
  writeReports({ ...r, runDir: dir });
  return join(dir, "report.html");
}

describe("report.html in a real browser (Debian's chromium)", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(() => browser?.close());

  it("a failing run: the verdict first, its cell, the splat with its fingerprint, and nothing from the network", async () => {
    const html = written(fixture("arm64-lkdtm-warning.json"));
    const page = await openReport(browser, html, "failing-arm64-lkdtm-warning");
    expect(page.verdict).toBe("FAILED");
    expect(page.columns).toEqual(["arm64"]);
    expect(page.fingerprints).toHaveLength(1);
    expect(page.fingerprints[0]).toMatch(/^[0-9a-f]{12}$/);
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([]);
  });

  it("plots the latency distributions a run measured (the probe's real figures), on canvases it drew", async () => {
    const r = fixture("x86_64-flaky-then-panic.json");
    const probe = readFileSync(
      join(import.meta.dirname, "fixtures/ktap/x86_64-6.12-timer-probe.log"),
      "utf8",
    );
    const run = r.runs[0];
    // The suite's bound on bpf_timer_excess's median, as a run under TCG records it.
    if (run)
      run.measures = parseMeasures(probe).measures.map((m) => ({
        ...m,
        command: "timer_probe",
        ...(m.name === "bpf_timer_excess" ? { limit: { value: 1_000_000, under: "tcg" } } : {}),
      }));
    const page = await openReport(browser, written(r), "latency-plot");
    // The latencies (bpf_timer's and the baseline's) on one plot, the bounded measure on its own.
    expect(page.canvases).toHaveLength(2);
    expect(page.canvases.every((n) => n > 1000)).toBe(true);
    expect(page.errors).toEqual([]);
  });

  it("draws the trends of a cell's measures from its history, this run's medians as the last points", async () => {
    const probe = readFileSync(
      join(import.meta.dirname, "fixtures/ktap/x86_64-6.12-timer-probe.log"),
      "utf8",
    );
    const measured = parseMeasures(probe).measures.map((m) => ({ ...m, command: "timer_probe" }));
    const base = fixture("x86_64-flaky-then-panic.json").runs[0];
    if (!base) throw new Error("fixture without a run");
    const db = new HistoryDb(join(mkdtempSync(join(tmpdir(), "khil-trend-")), "history.sqlite"));
    // Five earlier runs of the cell, each a little slower than the one before, recorded as runs record them.
    const runOf = (i: number) => ({
      ...structuredClone(base),
      id: `trend-${i}`,
      startedAt: `2026-12-0${i + 1}T00:00:00Z`,
      measures: measured.map((m) => ({ ...m, p50: m.p50 * (1 + i / 10) })),
    });
    for (let i = 0; i < 5; i++) recordRun(db, runOf(i), "boot-and-test");
    const now = runOf(5);
    judgeRun(db, now);
    db.close();
    expect(now.history?.trends?.map((t) => t.past.length)).toEqual(now.history?.trends?.map(() => 5));
    const page = await openReport(
      browser,
      written({ ...fixture("x86_64-flaky-then-panic.json"), runs: [now] }),
      "trends",
    );
    // A plot per unit the cell measured: the probe's nanoseconds, and the boot's seconds to SSH.
    expect(page.trends).toHaveLength(new Set(now.history?.trends?.map((t) => t.unit)).size);
    expect(page.trends.length).toBeGreaterThan(0);
    expect(page.trends.every((n) => n > 1000)).toBe(true);
    expect(page.errors).toEqual([]);
  });

  it("a bisect's page: the culprit first, the steps as a timeline with the culprit marked", async () => {
    const step = (commit: string, verdict: "good" | "bad" | "skip") => ({
      commit: commit.repeat(40),
      subject: `commit ${commit}`,
      verdict,
      reason: verdict,
      seconds: 60,
      runDir: "/nonexistent/step",
      tests: [],
      timings: {},
      raw: { make: 1, boot: 1, tests: 1, ratio: 1 },
    });
    const dir = mkdtempSync(join(tmpdir(), "khil-html-"));
    const file = join(dir, "report.html");
    writeFileSync(
      file,
      bisectHtml(
        {
          tree: "/tmp/t",
          arch: "x86_64",
          good: "a".repeat(40),
          bad: "d".repeat(40),
          firstBad: { commit: "c".repeat(40), subject: "commit c" },
          steps: [step("a", "good"), step("d", "bad"), step("b", "skip"), step("c", "bad")],
          stepCount: 4,
          skips: 1,
        },
        dir,
      ),
    );
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`file://${file}`);
    expect(await page.textContent("#verdict")).toBe("FOUND");
    expect(await page.$$eval("#timeline span", (s) => s.map((x) => x.className))).toEqual([
      "good",
      "bad",
      "skip",
      "bad culprit",
    ]);
    await page.screenshot({ path: join(runsDir(), "screenshots", "bisect.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("a matrix of several cells has a column each", async () => {
    const a = fixture("x86_64-boot-panic.json");
    const b = fixture("arm64-lkdtm-warning.json");
    const merged: Results = {
      ...a,
      runs: [
        { ...a.runs[0], cell: "x86_64-6.12-default" },
        { ...b.runs[0], cell: "arm64-6.12-default" },
      ] as Results["runs"],
    };
    const page = await openReport(browser, written(merged), "matrix-two-cells");
    expect(page.columns).toEqual(["x86_64-6.12-default", "arm64-6.12-default"]);
    expect(page.verdict).toBe("FAILED");
    expect(page.errors).toEqual([]);
  });
});
