import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { lineSplitter } from "../src/common/lines.ts";
import { isAlive } from "../src/host/children.ts";
import { projectRoot } from "../src/host/paths.ts";
import { type ArchRun, type Results, testName } from "../src/report/results.ts";

export const HOUR = 60 * 60_000;

/** probes/timer_probe's checks that run where the JIT is on, in the order it runs them. */
export const PROBE_JIT_CHECKS = [
  "array",
  "hash",
  "lru_hash",
  "inner_map",
  "rearm",
  "once",
  "never_early",
  "never_early_abs",
  "pinned",
  "cancel",
  "cancel_in_callback",
  "map_delete",
  "map_update",
  "usercnt",
  "latency",
];

/** The test files' own results databases: a test judges its run against no history it did not make. */
const histories = mkdtempSync(join(tmpdir(), "khil-test-history-"));
let historyCount = 0;

/**
 * The test process's own snapshots of ready guests (--repeat saves and restores them): another khil's on
 * this machine are not its business, nor are its runs theirs. Gone when the tests are.
 */
const snapshots = mkdtempSync(join(tmpdir(), "khil-test-snapshots-"));
process.on("exit", () => rmSync(snapshots, { recursive: true, force: true }));

/**
 * Runs the real CLI as a user would, capturing everything; its own progress lines (`khil: ...`: which
 * stage, which arch, how far a build is) also go to the test log as they come, tagged with its pid. Each
 * call records into a database of its own unless the test gives `--history` or $KHIL_HISTORY.
 */
export function khil(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}) {
  const p = execa("node", [join(projectRoot, "bin", "khil.js"), ...args], {
    cwd: projectRoot,
    reject: false,
    all: true,
    timeout: opts.timeoutMs ?? 60 * 60_000,
    env: {
      FORCE_COLOR: "0",
      KHIL_HISTORY: join(histories, `${process.pid}-${++historyCount}.sqlite`),
      KHIL_SNAPSHOTS: snapshots,
      ...opts.env,
    },
  });
  const forward = lineSplitter((l) => {
    if (l.startsWith("khil: ")) process.stderr.write(`  [khil ${p.pid}] ${l.slice(6)}\n`);
  });
  p.stderr?.on("data", forward);
  return p;
}

/** The run directory a command named on its `results:` line. */
export function runDirOf(stdout: string): string {
  const m = /^results: (\S+)/m.exec(stdout);
  if (!m?.[1]) throw new Error(`no results line in:\n${stdout}`);
  return m[1];
}

/** The results.json of the run a command printed. */
export function resultsOf(stdout: string): { dir: string; results: Results } {
  const dir = runDirOf(stdout);
  return { dir, results: JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as Results };
}

/** A test's verdict by its `test` or `test/subtest` name. */
export function verdictOf(run: ArchRun | undefined, name: string): string | undefined {
  return run?.tests.find((t) => testName(t) === name)?.verdict;
}

/** `name:verdict` of each parsed or recorded test, in order. */
export function namesAndVerdicts(
  tests: readonly { test: string; subtest?: string; verdict: string }[],
): string[] {
  return tests.map((t) => `${testName(t)}:${t.verdict}`);
}

/**
 * The QEMUs a run started (khil records their pids in its run directory) that are still alive: on a busy
 * machine other QEMUs may run, and they are not this test's business.
 */
export function qemuLeftIn(dir: string): number[] {
  const file = join(dir, "qemu.pids");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((pid) => isAlive(pid) && /qemu-system/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8")));
}

/** A captured fixture under test/fixtures, by its path there. */
export function fixture(path: string): string {
  return readFileSync(join(import.meta.dirname, "fixtures", path), "utf8");
}

/**
 * khil_splat.ko (test/capture/splat-module) built against the kernel of these `khil build` options, and a
 * boot-and-test of `suite` with it pushed into the guest.
 */
export async function withSplatModule(buildFlags: string[], suite: string) {
  const ko = (
    await execa("bash", [join(projectRoot, "test/capture/splat-module.sh"), ...buildFlags], {
      cwd: projectRoot,
    })
  ).stdout.trim();
  return khil(["boot-and-test", ...buildFlags, "--suite", suite, "--push", ko]);
}
