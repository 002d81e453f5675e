import { Command } from "commander";
import { KhilError } from "../common/errors.ts";
import { cacheDir, runsDir } from "../host/paths.ts";
import { checkWritable, diskProblem } from "../host/writable.ts";
import { registerBench } from "./bench.ts";
import { registerBisect } from "./bisect.ts";
import { registerBootAndTest } from "./boot-and-test.ts";
import { registerBuild } from "./build.ts";
import { registerCi } from "./ci.ts";
import { registerGuest } from "./guest.ts";
import { registerHistory } from "./history.ts";
import { registerLava } from "./lava.ts";
import { registerMatrix } from "./matrix.ts";
import { registerReport } from "./report.ts";

const program = new Command("khil")
  .description("build a kernel carrying the BPF timer series, boot it under QEMU, run its selftests over SSH")
  .exitOverride()
  .hook("preAction", (_, action) => {
    // Merging reports and writing CI files touch neither the caches nor the run directories.
    if (["merge", "github", "kcidb", "history"].includes(action.name())) return;
    checkWritable(cacheDir(), "KHIL_CACHE", 3);
    checkWritable(runsDir(), "KHIL_RUNS", 0);
  });

for (const register of [
  registerBuild,
  registerLava,
  registerGuest,
  registerBootAndTest,
  registerMatrix,
  registerReport,
  registerCi,
  registerBisect,
  registerBench,
  registerHistory,
])
  register(program);

/**
 * `git bisect run` reads every exit but 0 (good), 1 (bad) and 125 (skip) as bad, so under bisect-step any
 * failure of khil's own is a skip: it says nothing about the commit.
 */
const underBisect = process.argv.includes("bisect-step");
const ownFailure = (code: number) => (underBisect ? 125 : code);

// A write that fails where nobody awaits it (a full disk under the console log or a test log) would end
// khil with a stack trace and exit 1, which bisect reads as bad: say what it was, and exit as a failure of khil's.
process.on("uncaughtException", (e: NodeJS.ErrnoException) => {
  const disk = diskProblem(e.code);
  const what = disk ? `the disk ${disk}: ${e.message}` : (e.stack ?? e.message);
  process.stderr.write(`khil: ${underBisect ? "bisect-step: skip" : "error"}: ${what}\n`);
  // The exit handler (host/children.ts) kills every guest and build still running.
  process.exit(ownFailure(disk ? 2 : 70));
});

try {
  await program.parseAsync();
} catch (e) {
  const err = e as { code?: string; exitCode?: number };
  if (typeof err.code === "string" && err.code.startsWith("commander.")) {
    process.exitCode = err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2;
  } else if (e instanceof KhilError) {
    process.stderr.write(`khil: error: ${e.message}\n`);
    process.exitCode = e.exitCode > 1 ? ownFailure(e.exitCode) : e.exitCode;
  } else if (diskProblem(err.code)) {
    process.stderr.write(`khil: error: the disk ${diskProblem(err.code)}: ${(e as Error).message}\n`);
    process.exitCode = ownFailure(2);
  } else {
    throw e;
  }
}
