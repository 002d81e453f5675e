import type { Command } from "commander";
import { archNames } from "../arch/arch.ts";
import { runBench } from "../bench/bench.ts";
import { createRunDir } from "../host/run-dir.ts";
import { oneArch, positiveInt } from "./options.ts";

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description("each khil stage next to the same work done by the raw tools; writes bench.json")
    .option("--arch <arch>", `one of ${archNames().join(", ")}`, "x86_64")
    .option("--quick", "leave out the cold build (two full kernel builds without ccache)")
    .option("--runs <n>", "samples of the repeated stages", positiveInt, 3)
    .action(async (o) => {
      const arch = oneArch(o.arch, "bench");
      await runBench(arch, {
        quick: Boolean(o.quick),
        runs: o.runs,
        runDir: createRunDir(`bench-${arch.name}`),
      });
    });
}
