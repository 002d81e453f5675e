import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runFault } from "./fault.ts";
import { splatFingerprint } from "./fingerprint.ts";
import { toJunit } from "./junit.ts";
import type { Results } from "./results.ts";

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
}
