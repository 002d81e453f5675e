import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
    if (run) run.measures = parseMeasures(probe).measures.map((m) => ({ ...m, command: "timer_probe" }));
    const page = await openReport(browser, written(r), "latency-plot");
    expect(page.canvases.length).toBeGreaterThan(0);
    expect(page.canvases.every((n) => n > 1000)).toBe(true);
    expect(page.errors).toEqual([]);
  });

  it("a matrix of several cells has a column each, a merged run directory's links still work", async () => {
    const a = fixture("x86_64-boot-panic.json");
    const b = fixture("arm64-lkdtm-warning.json");
    const merged: Results = {
      ...a,
      runs: [
        { ...a.runs[0], cell: "x86_64-6.12-default" },
        { ...b.runs[0], cell: "arm64-6.12-default" },
      ] as Results["runs"],
    };
    const html = written(merged);
    const dir = join(html, "..");
    copyFileSync(html, join(dir, "copy.html"));
    const page = await openReport(browser, html, "matrix-two-cells");
    expect(page.columns).toEqual(["x86_64-6.12-default", "arm64-6.12-default"]);
    expect(page.verdict).toBe("FAILED");
    expect(page.errors).toEqual([]);
  });
});
