import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { createRunDir } from "../host/run-dir.ts";
import { mergeResults, readRunDir } from "../report/merge.ts";
import { matrixTable, toMarkdown } from "../report/summary.ts";
import { allPassed } from "../report/verdict.ts";
import { writeReports } from "../report/write.ts";
import { annotate } from "./options.ts";

export function registerReport(program: Command): void {
  const report = program.command("report").description("work with run directories");
  report
    .command("merge")
    .description("merge run directories (cells run anywhere) into one report")
    .argument("<dirs...>", "run directories holding results.json")
    .option("--out <dir>", "where to write the merged results.json, junit.xml and summary.md")
    .option("--markdown", "print the Markdown table instead of the text one")
    .action((dirs: string[], o) => {
      const runDir = o.out ? resolve(o.out) : createRunDir("report");
      mkdirSync(runDir, { recursive: true });
      const merged = mergeResults(dirs.map(readRunDir), runDir);
      writeReports(merged);
      writeFileSync(join(runDir, "summary.md"), toMarkdown(merged));
      process.stdout.write(o.markdown ? toMarkdown(merged) : `${matrixTable(merged)}\nresults: ${runDir}\n`);
      annotate(merged);
      process.exitCode = allPassed(merged) ? 0 : 1;
    });
}
