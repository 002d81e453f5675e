import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { githubWorkflow } from "../matrix/github.ts";
import { expandMatrix, loadMatrix } from "../matrix/matrix.ts";

export function registerCi(program: Command): void {
  program
    .command("ci")
    .description("write CI configuration")
    .command("github")
    .description("a GitHub Actions workflow running each matrix cell as a job and merging their reports")
    .option("--file <matrix.yaml>", "the matrix", "matrix.yaml")
    .option("--out <file>", "write here instead of stdout")
    .action((o) => {
      const text = githubWorkflow(expandMatrix(loadMatrix(o.file)), o.file);
      if (o.out) writeFileSync(o.out, text);
      else process.stdout.write(text);
    });
}
