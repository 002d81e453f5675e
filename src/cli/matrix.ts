import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { KhilError } from "../common/errors.ts";
import { createRunDir } from "../host/run-dir.ts";
import { expandMatrix, loadMatrix } from "../matrix/matrix.ts";
import { runMatrix } from "../matrix/runner.ts";
import { allPassed } from "../report/verdict.ts";
import { runDeadline } from "../run/cell.ts";
import { checkShardable } from "../run/shards.ts";
import { loadSuite } from "../run/suite.ts";
import { engineOf, engineOptions } from "./engine.ts";
import {
  annotate,
  collect,
  historyOf,
  jobsOption,
  machineOptions,
  machineSpec,
  runOptions,
} from "./options.ts";

export function registerMatrix(program: Command): void {
  engineOptions(
    runOptions(
      machineOptions(
        program.command("matrix").description("run every cell of a matrix file, here or in a LAVA lab"),
      ),
    ),
  )
    .option("--file <matrix.yaml>", "the matrix", "matrix.yaml")
    .option("--cell <name>", "run only this cell (repeatable)", collect, [])
    .option("--out <dir>", "the run directory (default: a new one under runs/)")
    .addOption(jobsOption())
    .action(async (o) => {
      const all = expandMatrix(loadMatrix(o.file));
      const unknown = (o.cell as string[]).filter((c) => !all.some((x) => x.name === c));
      if (unknown.length)
        throw new KhilError(
          `unknown cell ${unknown.join(", ")}: valid are ${all.map((c) => c.name).join(", ")}`,
        );
      const engine = engineOf(o);
      const sharded = all.filter((c) => (c.shards ?? 1) > 1);
      if (sharded.length && o.engine !== "local")
        throw new KhilError(
          `${o.file}: shards: splits cells over this machine's guests: leave out --engine lava`,
          2,
        );
      // A suite that cannot be split is refused now, not after its build.
      for (const c of sharded) checkShardable(loadSuite(c.suite));
      const cells = o.cell.length ? all.filter((c) => o.cell.includes(c.name)) : all;
      const runDir = o.out ? resolve(o.out) : createRunDir("matrix");
      mkdirSync(runDir, { recursive: true });
      const machine = { ...machineSpec(o), history: historyOf(o, "matrix") };
      machine.runDeadline = runDeadline(
        machine,
        cells.map((c) => loadSuite(c.suite)),
      );
      const results = await runMatrix(cells, runDir, machine, engine);
      annotate(results);
      process.exitCode = allPassed(results) ? 0 : 1;
    });
}
