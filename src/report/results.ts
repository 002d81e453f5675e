/** One schema for every parser and every arch: what results.json holds. */
import type { FaultClass } from "../common/errors.ts";
import type { GuestFacts } from "../guest/facts.ts";
import type { SeriesRecord } from "../kernel/tree.ts";
import type { Measure } from "../parse/measures.ts";

/**
 * flaky: failed, then passed when run again (`--retries`); it does not fail the run but is reported.
 * notrun: selected, but never ran because what ran it died first (a crash, a panic, a deadline).
 */
export type Verdict = "pass" | "fail" | "skip" | "flaky" | "error" | "notrun";

export interface TestRecord {
  arch: string;
  kernel: string;
  accel: string;
  suite: string;
  command: string;
  test: string;
  subtest?: string;
  verdict: Verdict;
  durationMs?: number;
  reason?: string;
  /** What its first attempt said, where reruns (`--retries`) replaced the reason: how it failed first. */
  firstReason?: string;
  log?: string;
  /** The shard's directory (`--shards N`, run/shards.ts) whose guest ran it: its log is there. */
  shard?: string;
  /** Its command ended after the run was interrupted from outside (ArchRun.interrupted): it may follow from that. */
  afterInterruption?: true;
  /** What the history of this test in this cell says of a result that did not pass (history/judge.ts). */
  history?: TestHistory;
}

/**
 * regression: it passed every time for a while and fails now (since the run and commit named);
 * known-flaky: it failed now and then in this cell before, at the rate given.
 */
export interface TestHistory {
  state: "regression" | "known-flaky";
  text: string;
  /**
   * A known flake failing the way it failed before, within its quarantine: reported everywhere, but it does
   * not fail the run. A different reason never is: that is a new failure.
   */
  quarantined?: true;
}

/** A failure that counts against the run: quarantined known flakes aside. */
export function failing(t: TestRecord): boolean {
  return ["fail", "error", "notrun"].includes(t.verdict) && !t.history?.quarantined;
}

/** When a splat came, as reports say it: the test or stage, and the shard's guest where there were several. */
export function splatWhen(s: Pick<SplatRecord, "during" | "shard">): string {
  return s.shard ? `${s.during} (${s.shard})` : s.during;
}

export interface SplatRecord {
  kind: string;
  title: string;
  location?: string;
  excerpt: string;
  /** The test running when it appeared (the next result line after it), or the stage. */
  during: string;
  /** The shard's directory (`--shards N`, run/shards.ts) whose guest reported it. */
  shard?: string;
  /** Where it was read: the console, dmesg, or (for a fault no pattern names) the kernel's bookkeeping. */
  source: "console" | "dmesg" | "bookkeeping";
  /** The same bug gives the same one in every run (fingerprint.ts); set when the report is written. */
  fingerprint?: string;
  /** The excerpt decoded by the tree's scripts/decode_stacktrace.sh: file:line per frame (kernel/decode.ts). */
  decoded?: string;
  /** Why there is no decoded excerpt, where decoding was tried. */
  decodeError?: string;
}

/** A measure's medians in the runs of a cell before this one, oldest first. */
export interface MeasureTrend {
  name: string;
  unit: string;
  past: number[];
}

export interface ArchRun {
  /** Unique to this run wherever its results go (merged reports, databases): a random UUID. */
  id?: string;
  /** When it started (ISO 8601). */
  startedAt?: string;
  arch: string;
  /** The matrix cell this run belongs to. */
  cell?: string;
  suite: string;
  /** The kernel tree built: the packaged one's version, a path, or a base plus a series. */
  tree?: string;
  /** The tree without its commit: a packaged tree's package, a user's path; history's axis (history/). */
  treeName?: string;
  /** The tree's commit (a git tree's HEAD, a series' last patch, a bisect step's) or a package's version. */
  commit?: string;
  /** The user's own config on top of the suite's (`--config`, `--debug`): their fragments' names. */
  variant?: string;
  /**
   * The history's view of this run: the cell it is compared within, measures that moved (warnings), and each
   * measure's medians in the cell's past runs, oldest first (report.html's trends).
   */
  history?: { cell: string; measures: string[]; trends?: MeasureTrend[] };
  series?: SeriesRecord;
  /**
   * "passed" only when every selected test passed (or some were skipped by the suite's deny list, with the
   * reason); "skipped" when the deny list skipped all of them.
   */
  status: "passed" | "failed" | "error" | "skipped";
  /** The run's fault class (fault.ts), set with its status: kernel, test or harness; absent when it passed. */
  fault?: FaultClass;
  /**
   * For an error: the stage that failed and why (build, boot, push, a command's timeout...), and whose fault
   * it was where the stage could tell (fault.ts: a compile error is the kernel's, a full disk the host's).
   */
  error?: { stage: string; message: string; fault?: FaultClass };
  /**
   * What stopped the run from outside the kernel under test: khil's whole-run deadline, or QEMU killed by a
   * signal khil did not send. Whatever failed after it follows from it: the run is an error, bisect skips.
   */
  interrupted?: string;
  /** Where the guest ran when not on this machine: the LAVA job that booted and tested it. */
  engine?: { name: "lava"; job: string };
  guest?: GuestFacts;
  /**
   * Options of the tree's selftests config fragments (a suite's `fromTree.config`) that this tree could not
   * give, each with its fragment and the reason: said, not failed, as BPF CI's own builds would lack them.
   */
  configUnmet?: string[];
  /**
   * A run split over guests (`--shards N`, run/shards.ts): each shard's directory under the run's (its
   * console, logs and test output), verdict, top-level tests and wall time; the tests above are theirs.
   */
  shards?: { dir: string; status: ArchRun["status"]; tests: number; seconds: number }[];
  /** What the output or the kernel contradicts: each fails the run, and bisect calls the commit bad. */
  problems: string[];
  /**
   * Faults of the machine, not of the kernel under test (low-resolution hrtimers, JIT off, too few CPUs,
   * another kernel booted): each fails the run, but bisect skips the commit. Absent in older results.
   */
  harness?: string[];
  splats: SplatRecord[];
  tests: TestRecord[];
  /**
   * What the tests measured (`# khil-measure:` lines), with the command that printed each and, where the
   * suite bounds its median, the limit in force (report/bounds.ts).
   */
  measures?: (Measure & { command: string; limit?: { value: number; under: string } })[];
  timings: Record<string, number>;
}

export interface Results {
  khil: string;
  /** The khil process's peak resident memory when the report was written. */
  khilPeakRssMiB?: number;
  startedAt: string;
  finishedAt: string;
  runDir: string;
  runs: ArchRun[];
}

/** `test` or `test/subtest`, as test_progs names them and every report shows them. */
export function testName(t: { test: string; subtest?: string }): string {
  return t.subtest ? `${t.test}/${t.subtest}` : t.test;
}
