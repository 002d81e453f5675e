import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../common/log.ts";
import type { Guest } from "../guest/guest.ts";
import { shellQuote } from "../guest/ssh.ts";
import { MARKER_PREFIX, type Splat, SplatDetector, STUCK_KINDS, splatsByMarker } from "../parse/splats.ts";
import { type Bookkeeping, parseBookkeeping, unexplained } from "../parse/taint.ts";
import type { ArchRun, SplatRecord } from "../report/results.ts";

/** The kernel's bookkeeping (parse/taint.ts): the taint mask, and lockdep's debug_locks where lockdep is built in. */
export const BOOKKEEPING = "cat /proc/sys/kernel/tainted; grep -s debug_locks: /proc/lockdep_stats; true";

/** How many console lines come with a kernel fault that no pattern named (KernelWatch.unnamed). */
const UNNAMED_EXCERPT_LINES = 40;

/** Kernel faults no console pattern names: the bookkeeping's reports, and a guest that died under the run. */
export type UnnamedKind = "unrecognised report" | "guest death";

/** Time a command gets to end by itself after the kernel reported it stuck, before khil stops it. */
export const STUCK_GRACE_MS = 10_000;

/** Writes the marker of `label` to the kernel log; a guest without /dev/kmsg runs the command all the same. */
export function kmsgMarker(label: string): string {
  // printf, not echo: dash's echo (a suite's /bin/sh may be dash) reads backslashes in the label.
  return `printf '%s\\n' ${shellQuote([`${MARKER_PREFIX}${label}`])} 2>/dev/null >/dev/kmsg; `;
}

/** Something run in the guest that a stuck kernel should stop: a command, or a test run again alone. */
export interface Activity {
  readonly signal: AbortSignal;
  /** A shell prefix that writes the activity's marker into the kernel log, for `readDmesg`. */
  readonly marker: string;
  /** A result line of `test`: the splats printed since the previous one are charged to it. */
  attribute(test: string): void;
  end(): void;
}

/**
 * Watches the kernel's console for the guest's whole life, from its first byte: boot, facts, push, every
 * command, every rerun. Each splat is charged to what was running when it was printed. After a splat that
 * leaves the kernel stuck (panic, lockup), whatever runs is stopped after a grace period.
 */
export class KernelWatch {
  /** The first splat after which the kernel is not fit to run more tests. */
  stuck: Splat | undefined;
  private readonly detector = new SplatDetector();
  private pending: Splat[] = [];
  private readonly recorded = new Map<Splat, SplatRecord>();
  private during = "boot";
  private abort: AbortController | undefined;
  private grace: NodeJS.Timeout | undefined;
  private book: Bookkeeping | undefined;
  /** The console's last lines: the excerpt of a kernel fault no pattern named. */
  private readonly tail: string[] = [];
  constructor(private readonly run: ArchRun) {}

  /** One console line; handed to the guest before it starts. */
  readonly feed = (line: string): void => {
    this.tail.push(line);
    if (this.tail.length > UNNAMED_EXCERPT_LINES) this.tail.shift();
    const before = this.detector.found.length;
    const closed = this.detector.feed(line);
    if (closed) this.patch(closed);
    const s = this.detector.found[before];
    if (!s) return;
    this.pending.push(s);
    log(`${this.run.arch}: kernel ${s.kind} on the console: ${s.title}`);
    if (STUCK_KINDS.includes(s.kind) && !this.stuck) {
      this.stuck = s;
      const a = this.abort;
      if (a) this.grace = setTimeout(() => a.abort(), STUCK_GRACE_MS);
    }
  };

  /** A stage of the run (facts, push): what the splats printed from now on are charged to. */
  stage(name: string): void {
    this.flush(this.during);
    this.during = name;
  }

  begin(label: string): Activity {
    this.stage(label);
    const abort = new AbortController();
    if (this.stuck) abort.abort();
    this.abort = abort;
    return {
      signal: abort.signal,
      marker: kmsgMarker(label),
      attribute: (test) => this.flush(test),
      end: () => {
        clearTimeout(this.grace);
        this.abort = undefined;
        this.flush(label);
      },
    };
  }

  /**
   * The guest's dmesg, kept in the run directory. Splats the console lost (a loglevel, a full buffer) are
   * added, each charged to the activity whose marker precedes it, or to boot.
   */
  async readDmesg(guest: Guest, runDir: string): Promise<void> {
    const dmesg = await guest.ssh.capture("dmesg", 30_000).catch(() => undefined);
    if (!dmesg) return;
    writeFileSync(join(runDir, `dmesg-${this.run.arch}.log`), dmesg.out);
    const seen = new Set(this.run.splats.map((s) => s.title));
    for (const { splat, during } of splatsByMarker(dmesg.out)) {
      const rec = this.record(splat, during, "dmesg");
      if (!seen.has(rec.title)) this.run.splats.push(rec);
    }
  }

  /**
   * The kernel's own bookkeeping, read after boot and after each command: a taint bit or lockdep switching
   * itself off with no recognised splat is a problem (a report whose title no pattern knows), charged to
   * what ran since the last reading. An unreadable answer (the guest went away) is the liveness check's.
   */
  async readBookkeeping(guest: Guest): Promise<void> {
    const r = await guest.ssh.capture(BOOKKEEPING, 10_000).catch(() => undefined);
    const now = r?.code === 0 ? parseBookkeeping(r.out) : undefined;
    if (!now) return;
    // Those the bookkeeping told are no recognised report: each later one is charged to its own command.
    const recognised =
      this.run.splats.filter((x) => x.source !== "bookkeeping").length + this.detector.found.length;
    for (const p of unexplained(this.book, now, recognised)) this.unnamed("unrecognised report", p);
    this.book = now;
  }

  /**
   * A kernel fault no console pattern named: a report only the bookkeeping told, a guest that died or stopped
   * answering. It is recorded as a splat of its own kind, charged to what ran, with the console's last lines
   * as its excerpt, so that every report and bisect see a kernel fault (report/fault.ts).
   */
  unnamed(kind: UnnamedKind, title: string, during = this.during): void {
    this.run.splats.push({ kind, title, excerpt: this.tail.join("\n"), during, source: "bookkeeping" });
  }

  /** Ends an excerpt the console left open (a panic stops it mid-trace) and records what is pending. */
  finish(): void {
    const closed = this.detector.close();
    if (closed) this.patch(closed);
    this.flush(this.during);
  }

  private flush(during: string): void {
    for (const s of this.pending.splice(0)) {
      const rec = this.record(s, during, "console");
      this.recorded.set(s, rec);
      this.run.splats.push(rec);
    }
  }

  private record(s: Splat, during: string, source: SplatRecord["source"]): SplatRecord {
    const rec: SplatRecord = { kind: s.kind, title: s.title, excerpt: s.excerpt, during, source };
    if (s.location) rec.location = s.location;
    return rec;
  }

  /** A splat's excerpt is complete only when its trace ends, which may be after it was charged. */
  private patch(s: Splat): void {
    const rec = this.recorded.get(s);
    if (rec) rec.excerpt = s.excerpt;
  }
}
