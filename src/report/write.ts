import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { log } from "../common/log.ts";
import { runFault } from "./fault.ts";
import { splatFingerprint } from "./fingerprint.ts";
import { type HtmlAssets, toHtml } from "./html.ts";
import { toJunit } from "./junit.ts";
import type { ArchRun, Results, TestRecord } from "./results.ts";

export function newResults(runDir: string): Results {
  return { khil: "0.1.0", startedAt: new Date().toISOString(), finishedAt: "", runDir, runs: [] };
}

/** results.json and junit.xml, rewritten whenever a run or cell ends so that a later failure loses nothing. */
export function writeReports(results: Results): void {
  results.finishedAt = new Date().toISOString();
  results.khilPeakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  // Derived from what each run holds, so that it agrees with it whenever written (fault.ts).
  for (const run of results.runs) {
    const fault = runFault(run);
    if (fault) run.fault = fault;
    else delete run.fault;
    for (const s of run.splats) s.fingerprint = splatFingerprint(s);
  }
  writeFileSync(join(results.runDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(results.runDir, "junit.xml"), toJunit(results));
  // The page is for reading; results.json and junit.xml are the record: a page that cannot be made (node
  // modules older than the checkout, without uPlot) costs only the page.
  try {
    writeFileSync(
      join(results.runDir, "report.html"),
      toHtml(results, htmlAssets(), logLink(results.runDir)),
    );
  } catch (e) {
    log(`report.html not written in ${results.runDir}: ${(e as Error).message}`);
  }
}

let assets: HtmlAssets | undefined;

/** uPlot, inlined into every report.html so that it opens with no network. */
function htmlAssets(): HtmlAssets {
  if (!assets) {
    const req = createRequire(import.meta.url);
    const file = (f: string) => readFileSync(req.resolve(`uplot/dist/${f}`), "utf8");
    assets = { uplotJs: file("uPlot.iife.min.js"), uplotCss: file("uPlot.min.css") };
  }
  return assets;
}

/** Where a test's log is, relative to the report: in the run directory, or in its matrix cell's. */
function logLink(runDir: string): (run: ArchRun, t: TestRecord) => string | undefined {
  return (run, t) => {
    const name = `test-${run.arch}-${t.command}.log`;
    // A sharded run's tests have their logs in their shard's directory (run/shards.ts).
    const dirs = [runDir, ...(run.cell ? [join(runDir, run.cell)] : [])].map((d) =>
      t.shard ? join(d, t.shard) : d,
    );
    const found = dirs.map((d) => join(d, name)).find((f) => existsSync(f));
    return found && relative(runDir, found);
  };
}
