import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Arch } from "./arch.ts";
import { InfraError, KhilError } from "./errors.ts";
import type { Guest } from "./guest.ts";
import { log } from "./log.ts";
import { bootGuest, buildFor } from "./prepare.ts";
import type { Accel } from "./qemu.ts";
import { summaryTable, toJunit } from "./report.ts";
import { type ArchRun, archStatus, type Results } from "./results.ts";
import { GUEST_DIR, readGuestFacts, resolvePush, runCommands } from "./run-suite.ts";
import { buildSelftests } from "./selftests.ts";
import { type Suite, selectTests, suiteFragments } from "./suite.ts";
import type { KernelTree } from "./tree.ts";

export interface BootAndTestOptions {
  archs: Arch[];
  tree: KernelTree;
  suite: Suite;
  fragments: string[];
  tests?: string[];
  /** false: run the tests the suite's deny list would skip. */
  deny: boolean;
  jobs?: number;
  accel?: Accel;
  bootTimeoutMs: number;
  cpus: number;
  memoryMiB: number;
  pushTimeoutMs: number;
  runDir: string;
}

function writeReports(results: Results): void {
  results.finishedAt = new Date().toISOString();
  writeFileSync(join(results.runDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(results.runDir, "junit.xml"), toJunit(results));
}

/** build → selftests → image → boot → push → run → parse → report, for each arch in turn. */
export async function bootAndTest(o: BootAndTestOptions): Promise<Results> {
  const results: Results = {
    khil: "0.1.0",
    startedAt: new Date().toISOString(),
    finishedAt: "",
    runDir: o.runDir,
    runs: [],
  };
  for (const arch of o.archs) {
    const run: ArchRun = {
      arch: arch.name,
      suite: o.suite.name,
      status: "error",
      problems: [],
      splats: [],
      tests: [],
      timings: {},
    };
    results.runs.push(run);
    let guest: Guest | undefined;
    let stage = "build";
    const t0 = Date.now();
    const mark = (name: string, since: number) => {
      run.timings[name] = (Date.now() - since) / 1000;
    };
    try {
      const req = {
        arch,
        tree: o.tree,
        fragments: [...suiteFragments(o.suite), ...o.fragments],
        jobs: o.jobs,
        runDir: o.runDir,
        accel: o.accel,
        bootTimeoutMs: o.bootTimeoutMs,
        cpus: o.cpus,
        memoryMiB: o.memoryMiB,
      };
      const build = await buildFor(req);
      mark("build", t0);
      stage = "selftests";
      const t1 = Date.now();
      const st = o.suite.build
        ? await buildSelftests(arch, build, o.suite.build.progTests, o.runDir)
        : undefined;
      mark("selftests", t1);
      const pushDir = st?.dir;
      const files = pushDir ? resolvePush(pushDir, o.suite.push) : [];
      stage = "boot";
      const t2 = Date.now();
      const elfs = pushDir
        ? files.filter((f) => !f.endsWith(".o") && !f.endsWith(".ko")).map((f) => join(pushDir, f))
        : [];
      const booted = await bootGuest(req, build, elfs);
      guest = booted.guest;
      mark("image+boot", t2);
      run.timings.bootToSsh = guest.bootSeconds;
      const { facts, problems } = await readGuestFacts(guest, build, booted.accel);
      run.guest = facts;
      run.problems.push(...problems);
      if (facts.bpfJitEnable !== "1")
        run.problems.push(`bpf_jit_enable is ${facts.bpfJitEnable}: the tests did not run on the JIT`);
      if (pushDir && files.length) {
        stage = "push";
        const t3 = Date.now();
        await guest.ssh.push(pushDir, files, GUEST_DIR, o.pushTimeoutMs).catch((e: Error) => {
          throw new InfraError(e.message, "push");
        });
        mark("push", t3);
        log(`${arch.name}: pushed ${files.length} files in ${run.timings.push?.toFixed(1)} s`);
      }
      stage = "run";
      const selected = o.tests ? { ...o.suite, tests: o.tests, arch: undefined } : o.suite;
      const suite = o.deny ? selected : { ...selected, deny: [] };
      const selection = selectTests(suite, arch.name, build.release);
      await runCommands({ arch, suite, selection, guest, build, accel: booted.accel, runDir: o.runDir }, run);
      run.status = archStatus(run, facts.bpfJitEnable === "1");
    } catch (e) {
      // An unexpected exception (an SSH connection the guest dropped as it died, say) still ends this arch
      // with a verdict naming the stage; its stack goes to a log, not to the user's terminal.
      if (!(e instanceof KhilError))
        appendFileSync(join(o.runDir, "khil-errors.log"), `${arch.name} ${stage}: ${(e as Error).stack}\n`);
      const s = e instanceof InfraError ? e.stage : stage;
      run.error = { stage: s, message: (e as Error).message };
      run.status = "error";
      log(`${arch.name}: ${s}: ${run.error.message}`);
      if (e instanceof KhilError && e.exitCode === 2 && !(e instanceof InfraError)) {
        writeReports(results);
        throw e;
      }
    } finally {
      if (guest) await guest.stop();
      run.timings.total = (Date.now() - t0) / 1000;
      writeReports(results);
    }
  }
  process.stdout.write(`${summaryTable(results)}\n`);
  process.stdout.write(`results: ${o.runDir} (results.json, junit.xml, console.log, logs)\n`);
  return results;
}
