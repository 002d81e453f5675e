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
  | "soft-lockup";

const STARTS: [SplatKind, RegExp][] = [
  ["panic", /Kernel panic - not syncing/],
  ["kasan", /BUG: KASAN:/],
  ["ubsan", /UBSAN:/],
  ["soft-lockup", /watchdog: BUG: soft lockup/],
  ["bug", /\bBUG: /],
  ["oops", /\bOops(:| -)/],
  ["warning", /WARNING: CPU: \d+ PID: \d+ at \S+/],
  [
    "lockdep",
    /possible circular locking dependency|inconsistent lock state|possible recursive locking detected/,
  ],
  ["rcu-stall", /rcu: INFO: .*detected stalls/],
  ["hung-task", /INFO: task .* blocked for more than \d+ seconds/],
];

const END = /---\[ end (trace|Kernel panic)|^\s*$/;

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

/** Strips the `[   12.345678] ` timestamp printk adds. */
function bare(line: string): string {
  return line.replace(/^\[\s*\d+\.\d+\]\s?/, "").replace(/\r$/, "");
}

/** A line-at-a-time detector, fed from the live console or from a dmesg dump. */
export class SplatDetector {
  readonly found: Splat[] = [];
  private current: { splat: Splat; lines: string[] } | undefined;

  feed(raw: string): Splat | undefined {
    const line = bare(raw);
    // The same report again while the first is still open (a soft lockup is reported every few seconds)
    // starts a splat of its own; another kind (the Oops after a BUG) belongs to the open one.
    const repeated = STARTS.find(([, re]) => re.test(line))?.[0] === this.current?.splat.kind;
    if (this.current && !repeated) {
      this.current.lines.push(line);
      const ended = END.test(line) || this.current.lines.length >= 80;
      if (ended) return this.close();
      return undefined;
    }
    this.close();
    for (const [kind, re] of STARTS) {
      if (!re.test(line)) continue;
      const title = line.trim();
      const location = kind === "warning" ? /at (\S+:\d+)/.exec(title)?.[1] : undefined;
      const splat: Splat = location ? { kind, title, location, excerpt: "" } : { kind, title, excerpt: "" };
      this.current = { splat, lines: [line] };
      this.found.push(splat);
      return undefined;
    }
    return undefined;
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

export function findSplats(text: string): Splat[] {
  const d = new SplatDetector();
  for (const l of text.split("\n")) d.feed(l);
  d.close();
  return d.found;
}
