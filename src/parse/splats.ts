/**
 * Kernel splats on the console or in dmesg: what makes a run fail even when every test printed OK. The
 * patterns are the ones BPF CI and ktest.pl watch for.
 */

export type SplatKind =
  | "panic"
  | "bug"
  | "oops"
  | "warning"
  | "kasan"
  | "ubsan"
  | "lockdep"
  | "rcu-stall"
  | "hung-task"
  | "soft-lockup"
  | "kfence"
  | "kmemleak"
  | "sleep-in-atomic";

/** First match wins: the specific `BUG: ...` and lockdep `WARNING: ...` titles come before the general ones. */
const STARTS: [SplatKind, RegExp][] = [
  ["panic", /Kernel panic - not syncing/],
  ["kasan", /BUG: KASAN:/],
  ["kfence", /BUG: KFENCE:/],
  ["ubsan", /UBSAN:/],
  ["soft-lockup", /watchdog: BUG: soft lockup/],
  ["sleep-in-atomic", /BUG: sleeping function called from invalid context/],
  ["bug", /\bBUG: /],
  ["oops", /\bOops(:| -)/],
  ["warning", /WARNING: CPU: \d+ PID: \d+ at \S+/],
  [
    "lockdep",
    // kernel/locking/lockdep.c's titles; `%s-safe -> %s-unsafe` is what an hrtimer callback taking a lock
    // that process context takes with softirqs on typically gets (SOFTIRQ-safe -> SOFTIRQ-unsafe)
    /WARNING: (possible circular locking dependency|inconsistent lock state|possible recursive locking detected|suspicious RCU usage|bad unlock balance detected|possible irq lock inversion dependency detected|lock held when returning to user space|\S+-safe -> \S+-unsafe lock order detected|held lock freed!|\S+ still has locks held!|Nested lock was not taken|bad contention detected)/,
  ],
  // RCU's own stall warnings, and those of the RCU-tasks flavours, which print without the `rcu: ` prefix
  [
    "rcu-stall",
    /rcu: INFO: \S+ (self-detected stall|detected (expedited )?stalls)|INFO: rcu_tasks\w* detected stalls/,
  ],
  ["hung-task", /INFO: task .* blocked for more than \d+ seconds/],
  ["kmemleak", /kmemleak: \d+ new suspected memory leaks/],
];

const END = /---\[ end (trace|Kernel panic)|^\s*$/;

/**
 * Reports with blank lines inside them end elsewhere: lockdep's after its stack dump (x86's `</TASK>`; on
 * arm64, whose dump has no end line, at the excerpt's line limit or the next report), KASAN's and KFENCE's
 * at the rule of `=` they close with.
 */
const ENDS: Partial<Record<SplatKind, RegExp>> = {
  lockdep: /^\s*<\/TASK>\s*$/,
  kasan: /^={20,}\s*$/,
  kfence: /^={20,}\s*$/,
};

/**
 * After these the command under them may never return (a CPU spins with preemption off, a task sleeps in D
 * state forever), and the kernel is not fit to run more tests.
 */
export const STUCK_KINDS: readonly SplatKind[] = ["panic", "soft-lockup", "hung-task", "rcu-stall"];

export interface Splat {
  kind: SplatKind;
  /** The first line, e.g. `WARNING: CPU: 0 PID: 60 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0xd/0xa0`. */
  title: string;
  /** For a WARNING, the kernel file:line it names. */
  location?: string;
  excerpt: string;
}

/** The line a kernel's stack trace starts with (x86's `Call Trace:`, arm64's `Call trace:`). */
export const TRACE_START = /^(Call [Tt]race|Backtrace):/;

/** A frame decode_stacktrace.sh resolved: `func (file.c:123)`. */
export const RESOLVED_FRAME = /\([^()]+\.[chS]:\d+/;

/** Strips the `[   12.345678] ` timestamp printk adds. */
function bare(line: string): string {
  return line.replace(/^\[\s*\d+\.\d+\]\s?/, "").replace(/\r$/, "");
}

/** A line-at-a-time detector, fed from the live console or from a dmesg dump. */
export class SplatDetector {
  readonly found: Splat[] = [];
  private current: { splat: Splat; lines: string[] } | undefined;

  /** Takes one line; returns the splat whose report it ended, if any. */
  feed(raw: string): Splat | undefined {
    const line = bare(raw);
    // A report that starts while another is open (a soft lockup repeated every few seconds, an RCU stall
    // inside a lockup's trace) is a record of its own; only the Oops line that x86 prints under a BUG is
    // part of that BUG's report.
    const kind = STARTS.find(([, re]) => re.test(line))?.[0];
    const continues = kind === "oops" && this.current?.splat.kind === "bug";
    if (this.current && (!kind || continues)) {
      this.current.lines.push(line);
      const ended = (ENDS[this.current.splat.kind] ?? END).test(line) || this.current.lines.length >= 80;
      if (ended) return this.close();
      return undefined;
    }
    // The report this line closes is returned: whoever recorded it early gets its whole excerpt.
    const closed = this.close();
    if (kind) {
      const title = line.trim();
      const location = kind === "warning" ? /at (\S+:\d+)/.exec(title)?.[1] : undefined;
      const splat: Splat = location ? { kind, title, location, excerpt: "" } : { kind, title, excerpt: "" };
      this.current = { splat, lines: [line] };
      this.found.push(splat);
    }
    return closed;
  }

  /** Ends an excerpt still open (the console stopped mid-trace, as a panic makes it). */
  close(): Splat | undefined {
    const c = this.current;
    if (!c) return undefined;
    c.splat.excerpt = c.lines.join("\n").trimEnd();
    this.current = undefined;
    return c.splat;
  }
}

/** What khil writes to the kernel log before each command it runs (`khil: begin command test_progs`). */
export const MARKER_PREFIX = "khil: begin ";

/** The splats of a kernel log, each with the label of the last marker before it ("boot" before any). */
export function splatsByMarker(log: string): { splat: Splat; during: string }[] {
  const d = new SplatDetector();
  const out: { splat: Splat; during: string }[] = [];
  let during = "boot";
  for (const line of log.split("\n")) {
    const at = line.indexOf(MARKER_PREFIX);
    if (at >= 0) {
      d.close();
      during = line.slice(at + MARKER_PREFIX.length).replace(/\r$/, "");
      continue;
    }
    const before = d.found.length;
    d.feed(line);
    const s = d.found[before];
    if (s) out.push({ splat: s, during });
  }
  d.close();
  return out;
}
