/**
 * A splat's fingerprint: the same bug gives the same one in every run, on every commit a bisect visits, so
 * that reports can be grouped by bug (KCIDB's issues, the history's splats table). Built as syzkaller and
 * KernelCI group crashes: the kind, the title without what changes from run to run (CPU, PID, addresses,
 * offsets, line numbers), and the top frames of the trace by function name.
 */
import { createHash } from "node:crypto";
import { TRACE_START } from "../parse/splats.ts";
import type { SplatRecord } from "./results.ts";

/** How many frames from the top of the trace name the bug: deeper ones are the path that led there. */
const TOP_FRAMES = 3;

/** printk's timestamp and the caller id some kernels add: `[    5.83] [  T99] `. */
const PREFIX = /^\[\s*\d+\.\d+\]\s?(\[\s*[CT]\d+\]\s?)?/;

/** The title with what differs between two runs of the same bug taken out. */
export function stableTitle(title: string): string {
  return title
    .replace(PREFIX, "")
    .replace(/\b(CPU|PID|pid|cpu): ?\d+/g, "$1: N")
    .replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/g, "")
    .replace(/\b0x[0-9a-f]+\b|\b[0-9a-f]{12,16}\b/g, "X")
    .replace(/\d+/g, "N")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * The functions at the top of the excerpt's trace, offsets and modules' build ids dropped. Frames the kernel
 * marks unreliable (`? `) count only where the trace has no reliable frame at all (CONFIG_UNWINDER_GUESS).
 */
export function topFrames(excerpt: string, n = TOP_FRAMES): string[] {
  const lines = excerpt.split("\n").map((l) => l.replace(PREFIX, ""));
  const start = lines.findIndex((l) => TRACE_START.test(l.trim()));
  if (start < 0) return [];
  const frames: { fn: string; unreliable: boolean }[] = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^\s*(?:\[<[0-9a-f]+>\]\s*)?(\?\s+)?([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+/.exec(l);
    if (m?.[2]) frames.push({ fn: m[2], unreliable: Boolean(m[1]) });
    else if (!/^\s*<\/?[A-Z]+>\s*$/.test(l) && frames.length > 0) break;
  }
  const reliable = frames.filter((f) => !f.unreliable);
  return (reliable.length ? reliable : frames).slice(0, n).map((f) => f.fn);
}

/** 12 hex digits over kind, stable title and top frames. */
export function splatFingerprint(s: Pick<SplatRecord, "kind" | "title" | "excerpt">): string {
  const text = [s.kind, stableTitle(s.title), ...topFrames(s.excerpt)].join("\n");
  return createHash("sha256").update(text).digest("hex").slice(0, 12);
}
