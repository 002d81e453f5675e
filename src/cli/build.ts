import type { Command } from "commander";
import { archNames, resolveArchs } from "../arch/arch.ts";
import { createRunDir } from "../host/run-dir.ts";
import { buildKernel } from "../kernel/kbuild.ts";
import { DEFAULT_DEADLINES, resolveDeadlines } from "../run/deadlines.ts";
import { fragmentsOf, positiveInt, treeOf, treeOptions } from "./options.ts";

export function registerBuild(program: Command): void {
  treeOptions(program.command("build").description("configure and build the kernel"))
    .option("--arch <arch>", `${archNames().join(", ")} or all`, "x86_64")
    .option("--build-timeout <s>", `deadline for the build (default ${DEFAULT_DEADLINES.build})`, positiveInt)
    .option("--json", "print the paths as JSON")
    .action(async (o) => {
      const archs = resolveArchs(o.arch);
      const tree = await treeOf(o);
      const runDir = createRunDir("build");
      const builds = [];
      const timeoutMs = resolveDeadlines({ build: o.buildTimeout }).build * 1000;
      for (const arch of archs) {
        builds.push(
          await buildKernel({ tree, arch, fragments: fragmentsOf(o), jobs: o.jobs, runDir, timeoutMs }),
        );
      }
      if (o.json)
        process.stdout.write(`${JSON.stringify(builds.length === 1 ? builds[0] : builds, null, 2)}\n`);
      else
        for (const b of builds)
          process.stdout.write(
            `${b.arch} ${b.release}\n  boot image: ${b.bootImage}\n  vmlinux:    ${b.vmlinux}\n  config:     ${b.config}\n  log:        ${b.log}\n`,
          );
    });
}
