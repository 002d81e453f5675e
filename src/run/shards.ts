/**
 * Sharding one cell's tests over several guests at once (`--shards N`), as BPF CI spreads test_progs over
 * runners: pure planning (which tests each shard runs) and merging (one run's results from the shards').
 * The shards share the cell's kernel and selftests build; each boots its own guest in its own directory.
 */
import { KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import type { ArchRun } from "../report/results.ts";
import { archStatus } from "../report/verdict.ts";
import type { Command } from "./context.ts";
import { allowList, splitCliTests } from "./selection.ts";
import type { Suite } from "./suite.ts";

/** Where shard `index` (from 0) of a sharded run keeps its console, logs and test output. */
export function shardDirName(index: number, of: number): string {
  return `shard-${index + 1}-of-${of}`;
}

/**
 * The units a sharded run splits, each a selection `--test` takes: the test_progs tests the selection
 * matches among those the build holds (`declared`, what `test_progs -l` will list; a `test/subtest`
 * selection keeps its subtest part), and each test of a command that takes its subtests as arguments
 * (test_maps, test_verifier, khil's probes). A command that cannot be given a part of the selection (a
 * kselftest target, a plain command) would run whole in every shard: such a suite is refused.
 */
export function shardUnits(
  suite: Pick<Suite, "name" | "tests" | "arch" | "commands">,
  arch: string,
  declared: readonly string[],
  cliTests: readonly string[] | undefined,
): string[] {
  const whole = (c: Command) => c.parser !== "test_progs" && !c.subtestArgs;
  const fixed = suite.commands.filter(whole);
  if (fixed.length)
    throw new KhilError(
      `--shards: suite ${suite.name}'s command ${fixed.map((c) => c.name).join(", ")} cannot be split over guests (only test_progs and commands with subtestArgs can): leave out --shards (or the matrix's shards:)`,
      2,
    );
  const cli = cliTests ? splitCliTests(suite.commands, cliTests) : undefined;
  const progs = suite.commands.some((c) => c.parser === "test_progs")
    ? allowList(cli?.suite ?? suite.arch?.[arch]?.tests ?? suite.tests, declared)
    : [];
  const own = suite.commands.flatMap((c) => {
    if (!c.subtestArgs) return [];
    const tests = c.tests ?? [];
    if (!cli) return tests;
    // The user's patterns for this command, as they gave them (a subtest part stays).
    return (cliTests ?? []).filter((p) => matchesAny(p.split("/")[0] ?? p, tests));
  });
  return [...new Set([...progs, ...own])].sort();
}

/**
 * `n` shards of `units`, dealt in turn from the sorted list: the same units give the same shards on every
 * machine and every run, so a failure is found again in the shard that had it. No shard is empty: fewer
 * units than shards gives fewer shards.
 */
export function planShards(units: readonly string[], n: number): string[][] {
  const sorted = [...new Set(units)].sort();
  const count = Math.min(n, sorted.length);
  return Array.from({ length: count }, (_, k) => sorted.filter((_, i) => i % count === k));
}

/** One shard's finished run: its directory (shardDirName) and its wall time, boot to the guest's stop. */
export interface ShardRun {
  run: ArchRun;
  dir: string;
  seconds: number;
}

/**
 * The cell's run from its shards' runs: every test of every shard, every problem, fault and splat with
 * the shard it came from; the guest stages' times are the slowest shard's (the shards ran at once), the
 * host's (build, selftests) the cell's own. The status is judged again on the whole.
 */
export function mergeShardRuns(cell: ArchRun, shards: readonly ShardRun[]): ArchRun {
  const tagged = (x: ShardRun, text: string) => `${x.dir}: ${text}`;
  const merged: ArchRun = {
    ...cell,
    tests: [...cell.tests, ...shards.flatMap((x) => x.run.tests)],
    problems: [...cell.problems, ...shards.flatMap((x) => x.run.problems.map((p) => tagged(x, p)))],
    harness: [
      ...(cell.harness ?? []),
      ...shards.flatMap((x) => (x.run.harness ?? []).map((p) => tagged(x, p))),
    ],
    splats: [
      ...cell.splats,
      ...shards.flatMap((x) => x.run.splats.map((s) => ({ ...s, during: tagged(x, s.during) }))),
    ],
    timings: { ...cell.timings },
    shards: shards.map((x) => ({
      dir: x.dir,
      status: x.run.status,
      tests: x.run.tests.filter((t) => !t.subtest).length,
      seconds: x.seconds,
    })),
  };
  for (const x of shards)
    for (const [k, v] of Object.entries(x.run.timings))
      if (!(k in cell.timings)) merged.timings[k] = Math.max(merged.timings[k] ?? 0, v);
  const measures = shards.flatMap((x) => x.run.measures ?? []);
  if (measures.length) merged.measures = measures;
  const guest = shards.find((x) => x.run.guest)?.run.guest;
  if (guest) merged.guest = guest;
  const failed = shards.find((x) => x.run.error);
  if (failed?.run.error && !cell.error)
    merged.error = { ...failed.run.error, message: tagged(failed, failed.run.error.message) };
  const cut = shards.find((x) => x.run.interrupted);
  if (cut?.run.interrupted && !cell.interrupted) merged.interrupted = tagged(cut, cut.run.interrupted);
  merged.status = archStatus(merged);
  return merged;
}
