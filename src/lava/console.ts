/**
 * A LAVA job's log read back (pure): the YAML list the REST API serves, and the guest's console in it cut
 * into what boot printed and what each command printed between khil's markers.
 */
import { parse } from "yaml";
import { beginMarker, exitMarker } from "./job.ts";

export interface LogEntry {
  dt: string;
  lvl: string;
  msg: unknown;
}

/** `/api/v0.2/jobs/ID/logs/?start=N`: a YAML list of `{dt, lvl, msg}`, or nothing yet. */
export function parseLavaLog(text: string): LogEntry[] {
  const list = parse(text) as unknown;
  if (list === null || list === undefined) return [];
  if (!Array.isArray(list)) throw new Error("a LAVA job log is a YAML list of {dt, lvl, msg}");
  // an entry that is no mapping (a lab's oddity, a cut transfer) carries nothing to read
  return list.filter(
    (e): e is LogEntry => typeof e === "object" && e !== null && !Array.isArray(e),
  ) as LogEntry[];
}

/** The guest's console lines of log entries: LAVA's `target` level, one message per console line. */
export function targetLines(entries: readonly LogEntry[]): { dt: string; line: string }[] {
  return entries
    .filter((e) => e.lvl === "target" && typeof e.msg === "string")
    .flatMap((e) =>
      (e.msg as string).split("\n").map((line) => ({ dt: e.dt, line: line.replace(/\r$/, "") })),
    );
}

/** A line the kernel printed: printk's timestamp, as khil's kernels have it (PRINTK_TIME). */
export const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;

/**
 * A kernel line that began in the middle of a command's output line (the serial console is shared, and
 * printk does not wait for a newline): where its timestamp starts.
 */
const GLUED_KERNEL = /\[\s*\d+\.\d{6}\] /;

export interface Segment {
  name: string;
  lines: string[];
  /** The command's exit code; undefined when the job ended before the command did. */
  code?: number;
  startedAt?: string;
}

export interface ConsoleEvents {
  /** Every line that is not a command's own output: boot, the kernel, the shell. */
  kernel(line: string): void;
  begin(name: string): void;
  output(name: string, line: string): void;
  end(name: string, code: number): void;
}

/**
 * Follows the console of a job whose commands khil wrote: a command's output runs from its begin marker
 * to its exit marker. The kernel's own lines inside it (timestamped) are the kernel's, not the command's,
 * since both share the one console.
 */
export class JobConsole {
  readonly segments = new Map<string, Segment>();
  private current: Segment | undefined;
  constructor(
    private readonly names: readonly string[],
    private readonly on: ConsoleEvents,
  ) {}

  feed(line: string, dt = ""): void {
    const c = this.current;
    if (c) {
      const m = line.trim().match(/^khil-exit-([\w.-]+)=(\d+)$/);
      if (m?.[1] === c.name && line.trim() === exitMarker(c.name, m[2] ?? "")) {
        c.code = Number(m[2]);
        this.current = undefined;
        this.on.end(c.name, c.code);
        return;
      }
      if (KERNEL_LINE.test(line)) this.on.kernel(line);
      else {
        const at = line.search(GLUED_KERNEL);
        const own = at > 0 ? line.slice(0, at) : line;
        c.lines.push(own);
        this.on.output(c.name, own);
        if (at > 0) this.on.kernel(line.slice(at));
      }
      return;
    }
    const name = this.names.find((n) => line.trim() === beginMarker(n));
    if (name && !this.segments.has(name)) {
      const s: Segment = { name, lines: [], startedAt: dt };
      this.segments.set(name, s);
      this.current = s;
      this.on.begin(name);
      return;
    }
    this.on.kernel(line);
  }

  /** The command whose output was still coming when the console stopped. */
  get running(): string | undefined {
    return this.current?.name;
  }
}

/** A rerun step's attempts, each by the `# khil: TEST WHY:` line it follows (`timer_lockup skipped, attempt 2`). */
export function rerunAttempts(lines: readonly string[]): Map<string, string> {
  const attempts = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of lines) {
    const m = /^# khil: (.+):$/.exec(line);
    if (m?.[1]) {
      current = [];
      attempts.set(m[1], current);
    } else current?.push(line);
  }
  return new Map([...attempts].map(([k, v]) => [k, v.join("\n")]));
}
