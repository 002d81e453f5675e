import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { KhilError } from "../common/errors.ts";
import { createRunDir } from "../host/run-dir.ts";
import { cellJob } from "../lava/cell-job.ts";
import { expandMatrix, loadMatrix } from "../matrix/matrix.ts";
import { machineOptions, machineSpec } from "./options.ts";

export function registerLava(program: Command): void {
  const lava = program.command("lava").description("hand matrix cells to a LAVA lab");
  machineOptions(
    lava
      .command("job")
      .description("build a matrix cell here and write the LAVA job that boots and tests it in a lab")
      .argument("<cell>", "a cell of the matrix (npx khil matrix --help lists the file)"),
  )
    .option("--file <matrix.yaml>", "the matrix", "matrix.yaml")
    .requiredOption("--artifacts <dir>", "where to put the kernel and initramfs (names by content hash)")
    .option("--artifacts-url <url>", "where the lab fetches that directory from (default: file://DIR)")
    .option("--out <file>", "write the job here instead of stdout")
    .action(async (name: string, o) => {
      const all = expandMatrix(loadMatrix(o.file));
      const cell = all.find((c) => c.name === name);
      if (!cell) throw new KhilError(`unknown cell ${name}: valid are ${all.map((c) => c.name).join(", ")}`);
      const artifacts = resolve(o.artifacts);
      mkdirSync(artifacts, { recursive: true });
      const job = await cellJob(cell, machineSpec(o), {
        artifacts,
        artifactsUrl: o.artifactsUrl ?? `file://${artifacts}/`,
        runDir: createRunDir(`lava-job-${name}`),
      });
      if (o.out) writeFileSync(o.out, job);
      else process.stdout.write(job);
    });
}
