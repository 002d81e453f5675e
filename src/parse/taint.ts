/**
 * The kernel's own bookkeeping of what went wrong, beside the console patterns of splats.ts: the taint mask
 * (`/proc/sys/kernel/tainted`, kernel/panic.c's taint_flags) and lockdep's `debug_locks`, which lockdep
 * clears when it reports anything. A report whose title no pattern knows still sets one of them, so a new
 * bit without a recognised splat is a failure of its own: the patterns name reports, the bookkeeping decides.
 */

/** kernel/panic.c's letters, by bit. */
const LETTERS = "PFSRMBUDAWCIOELKXTN";

/**
 * The bits the kernel sets when it reports something: B bad page, D died (oops), L soft lockup, M machine check,
 * W warning. The others say what was loaded or how the machine is (O and E: the selftests' own bpf_testmod, an
 * out-of-tree unsigned module; N: a test module; I and S: firmware workarounds or CPUs out of spec on real
 * lab hardware, set at boot): they are no report.
 */
const REPORTS = new Set(["B", "D", "L", "M", "W"]);

export interface Bookkeeping {
  tainted: number;
  /** lockdep's debug_locks (1 while it watches, 0 once it has reported and turned itself off); absent without lockdep. */
  debugLocks?: number;
}

/** What `cat /proc/sys/kernel/tainted; grep debug_locks: /proc/lockdep_stats` printed; undefined if unreadable. */
export function parseBookkeeping(text: string): Bookkeeping | undefined {
  const [first, ...rest] = text.trim().split("\n");
  if (!first || !/^\d+$/.test(first.trim())) return undefined;
  const locks = rest.map((l) => /debug_locks:\s*(\d+)/.exec(l)?.[1]).find(Boolean);
  return { tainted: Number(first.trim()), ...(locks ? { debugLocks: Number(locks) } : {}) };
}

/** The letters of a taint mask, e.g. 4608 → ["W", "O"]. */
export function taintLetters(mask: number): string[] {
  return [...LETTERS].filter((_, bit) => Math.floor(mask / 2 ** bit) % 2 === 1);
}

/**
 * What the bookkeeping says happened since `before` that no recognised report accounts for: report bits that
 * are new, lockdep turning itself off. Only when no splat was recognised in the run so
 * far: a recognised one already fails it, and says more.
 */
export function unexplained(before: Bookkeeping | undefined, now: Bookkeeping, recognised: number): string[] {
  if (recognised > 0) return [];
  const was = new Set(taintLetters(before?.tainted ?? 0));
  const fresh = taintLetters(now.tainted).filter((l) => !was.has(l) && REPORTS.has(l));
  const out: string[] = [];
  if (fresh.length)
    out.push(
      `the kernel tainted itself (${fresh.join("")}: /proc/sys/kernel/tainted ${now.tainted}) without a report khil recognises`,
    );
  if (before?.debugLocks === 1 && now.debugLocks === 0)
    out.push("lockdep turned itself off (debug_locks 0) without a report khil recognises");
  return out;
}
