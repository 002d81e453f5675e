/**
 * Sharding one cell's tests over several guests at once (`--shards N`), as BPF CI spreads test_progs over
 * runners: pure planning (which tests each shard runs) and merging (one run's results from the shards').
 * The shards share the cell's kernel and selftests build; each boots its own guest in its own directory.
 */
import { KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { errorClass } from "../report/fault.ts";
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
  checkShardable(suite);
  const cli = cliTests ? splitCliTests(suite.commands, cliTests) : undefined;
  const progs = suite.commands.some((c) => c.parser === "test_progs")
    ? allowList(cli?.suite ?? suite.arch?.[arch]?.tests ?? suite.tests, declared)
    : [];
  const own = suite.commands.flatMap((c) => {
    if (!c.subtestArgs) return [];
    const tests = c.tests ?? [];
    if (!cli) return tests;
    // The command's tests the user's patterns match, each with the pattern's subtest part if it has one.
    return (cliTests ?? []).flatMap((p) => {
      const slash = p.indexOf("/");
      const named = tests.filter((n) => matchesAny(n, [slash < 0 ? p : p.slice(0, slash)]));
      return named.map((n) => (slash < 0 ? n : `${n}${p.slice(slash)}`));
    });
  });
  const units = [...new Set([...progs, ...own])].sort();
  if (!units.length)
    throw new KhilError(
      `--shards: suite ${suite.name} selects no test to split on ${arch}${cliTests ? ` with --test ${cliTests.join(", ")}` : ""}`,
      2,
    );
  return units;
}

/** Refuses, before any build, a suite with a command that would run whole in every shard. */
export function checkShardable(suite: Pick<Suite, "name" | "commands">): void {
  // A command that runs the same tests whatever the selection would run them in every shard: test_progs
  // with its own `tests:`, a subtestArgs command naming no test, a kselftest target, a plain command.
  const whole = (c: Command) =>
    c.parser === "test_progs" ? c.tests !== undefined : !c.subtestArgs || !c.tests?.length;
  const fixed = suite.commands.filter(whole);
  if (fixed.length)
    throw new KhilError(
      `--shards: suite ${suite.name}'s command ${fixed.map((c) => c.name).join(", ")} cannot be split over guests (only test_progs taking the suite's selection and commands with subtestArgs and tests: can): leave out --shards (or the matrix's shards:)`,
      2,
    );
}

/**
 * `n` shards of `units`, dealt in turn from the sorted list: the same units give the same shards on every
 * machine and every run, so a failure is found again in the shard that had it. Units of one test
 * (`timer_crash/array`, `timer_crash/hash`) go to one shard: a test is run, and reported, once. No shard is
 * empty: fewer tests than shards gives fewer shards.
 */
export function planShards(units: readonly string[], n: number): string[][] {
  const groups = new Map<string, string[]>();
  for (const u of [...new Set(units)].sort()) {
    const test = u.split("/")[0] ?? u;
    groups.set(test, [...(groups.get(test) ?? []), u]);
  }
  const dealt = [...groups.values()];
  const count = Math.min(n, dealt.length);
  return Array.from({ length: count }, (_, k) => dealt.filter((_, i) => i % count === k).flat());
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
    tests: [...cell.tests, ...shards.flatMap((x) => x.run.tests.map((t) => ({ ...t, shard: x.dir })))],
    problems: [...cell.problems, ...shards.flatMap((x) => x.run.problems.map((p) => tagged(x, p)))],
    harness: [
      ...(cell.harness ?? []),
      ...shards.flatMap((x) => (x.run.harness ?? []).map((p) => tagged(x, p))),
    ],
    splats: [...cell.splats, ...shards.flatMap((x) => x.run.splats.map((s) => ({ ...s, shard: x.dir })))],
    timings: { ...cell.timings },
    shards: shards.map((x) => ({
      dir: x.dir,
      status: x.run.status,
      tests: x.run.tests.filter((t) => !t.subtest).length,
      seconds: x.seconds,
    })),
  };
  // A stage both had (push: the host resolves the files, each guest receives them) is the cell's part then
  // the slowest shard's, since the shards ran at once after it.
  const slowest: Record<string, number> = {};
  for (const x of shards)
    for (const [k, v] of Object.entries(x.run.timings)) slowest[k] = Math.max(slowest[k] ?? 0, v);
  for (const [k, v] of Object.entries(slowest)) merged.timings[k] = (cell.timings[k] ?? 0) + v;
  const measures = shards.flatMap((x) => x.run.measures ?? []);
  if (measures.length) merged.measures = measures;
  const guest = shards.find((x) => x.run.guest)?.run.guest;
  if (guest) merged.guest = guest;
  // One shard's error and interruption are the run's (a failed boot first: the kernel did not boot, whatever
  // another shard's guest did); every other shard's is a finding of its own class, as is a shard that gave
  // no result at all: no shard's failure may be hidden by the others' passes.
  const first = shards.find((x) => x.run.error?.stage === "boot") ?? shards.find((x) => x.run.error);
  const harness = merged.harness ?? [];
  for (const x of shards) {
    const { error, interrupted } = x.run;
    if (error && x === first) merged.error = { ...error, message: tagged(x, error.message) };
    else if (error)
      (errorClass(error) === "harness" ? harness : merged.problems).push(
        tagged(x, `${error.stage}: ${error.message}`),
      );
    if (interrupted && !merged.interrupted) merged.interrupted = tagged(x, interrupted);
    else if (interrupted) harness.push(tagged(x, `interrupted: ${interrupted}`));
    if (!error && !interrupted && !x.run.tests.some((t) => !t.subtest))
      harness.push(tagged(x, "no test gave a result"));
  }
  merged.harness = harness;
  // A guest's facts are proof of a boot (KCIDB's boot status): not the run's where one shard did not boot.
  if (merged.error?.stage === "boot") delete merged.guest;
  merged.status = archStatus(merged);
  return merged;
}
