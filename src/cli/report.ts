import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { HistoryDb } from "../history/db.ts";
import { recordRun } from "../history/history.ts";
import { createRunDir } from "../host/run-dir.ts";
import { toKcidb } from "../report/kcidb.ts";
import { mergeResults, readRunDir } from "../report/merge.ts";
import { matrixTable, toMarkdown } from "../report/summary.ts";
import { allPassed } from "../report/verdict.ts";
import { writeReports } from "../report/write.ts";
import { annotate } from "./options.ts";

export function registerReport(program: Command): void {
  const report = program.command("report").description("work with run directories");
  report
    .command("merge")
    .description(
      "merge run directories (cells run anywhere) into one report, and results databases into one database",
    )
    .argument("<dirs...>", "run directories holding results.json, and results databases (*.sqlite)")
    .option("--out <dir>", "where to write the merged results.json, junit.xml, summary.md and history.sqlite")
    .option(
      "--history <file|none>",
      "the database to merge every run into (default: history.sqlite in --out), or none",
    )
    .option("--markdown", "print the Markdown table instead of the text one")
    .action((args: string[], o) => {
      const runDir = o.out ? resolve(o.out) : createRunDir("report");
      mkdirSync(runDir, { recursive: true });
      const isDb = (a: string) => /\.(sqlite3?|db)$/.test(a);
      const dirs = args.filter((a) => !isDb(a));
      const merged = mergeResults(dirs.map(readRunDir), runDir);
      if (o.history === "none" && dirs.length < args.length)
        throw new KhilError("--history none: the databases given have nowhere to be merged into", 2);
      // Every run, from a database or a run directory, once: the database keeps each by its id.
      const into =
        o.history === "none"
          ? undefined
          : new HistoryDb(resolve(o.history ?? join(runDir, "history.sqlite")));
      for (const file of into ? args.filter(isDb) : []) {
        if (!existsSync(file)) throw new KhilError(`${file}: no such results database`, 2);
        const from = new HistoryDb(resolve(file));
        for (const r of from.runs()) into?.record(from.recorded(r.id));
        from.close();
      }
      if (into) {
        for (const run of merged.runs) recordRun(into, run, "merge", runDir);
        log(`history: ${into.runs().length} runs in ${into.file}`);
        into.close();
      }
      if (!dirs.length) return;
      writeReports(merged);
      writeFileSync(join(runDir, "summary.md"), toMarkdown(merged));
      process.stdout.write(o.markdown ? toMarkdown(merged) : `${matrixTable(merged)}\nresults: ${runDir}\n`);
      annotate(merged);
      process.exitCode = allPassed(merged) ? 0 : 1;
    });
  report
    .command("kcidb")
    .description("write run directories as KernelCI's KCIDB JSON (schema v5), to submit with kcidb-submit")
    .argument("<dirs...>", "run directories holding results.json")
    .option("--origin <name>", "the CI system's name in KCIDB ids (lowercase letters, digits, _)", "khil")
    .option("--out <file>", "write it here instead of standard output")
    .action((dirs: string[], o) => {
      if (!/^[a-z0-9_]+$/.test(o.origin))
        throw new KhilError(`--origin ${o.origin}: KCIDB takes lowercase letters, digits and _ only`, 2);
      const merged = mergeResults(dirs.map(readRunDir), "");
      const json = `${JSON.stringify(toKcidb(merged, o.origin), null, 2)}\n`;
      if (o.out) writeFileSync(resolve(o.out), json);
      else process.stdout.write(json);
    });
}
