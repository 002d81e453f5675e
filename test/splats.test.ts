import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { splatsByMarker } from "../src/parse/splats.ts";
import type { ArchRun } from "../src/report/results.ts";
import { KernelWatch } from "../src/run/kernel-log.ts";
import { withLeakList } from "../src/run/kmemleak.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");
const findSplats = (log: string) => splatsByMarker(log).map((x) => x.splat);

describe("kernel splats on a real console (LKDTM WARNING, then EXCEPTION with oops=panic)", () => {
  const splats = findSplats(fixture("console/x86_64-lkdtm-warning-exception.log"));

  it("finds the WARNING with its file:line, the BUG and the panic, in order", () => {
    expect(splats.map((s) => s.kind)).toEqual(["warning", "bug", "panic"]);
    expect(splats[0]?.location).toMatch(/drivers\/misc\/lkdtm\/bugs\.c:\d+$/);
  });

  it("keeps each excerpt up to the end of its call trace", () => {
    const warning = splats[0]?.excerpt ?? "";
    expect(warning.split("\n")[0]).toMatch(/^WARNING: CPU: \d+ PID: \d+ at /);
    expect(warning).toContain("Call Trace:");
    expect(warning.split("\n").pop()).toMatch(/---\[ end trace [0-9a-f]+ \]---/);
    expect(splats[1]?.excerpt).toContain("lkdtm_EXCEPTION");
  });

  it("finds nothing in a clean boot", () => {
    const clean = fixture("console/x86_64-lkdtm-warning-exception.log").split("\n").slice(0, 200).join("\n");
    expect(findSplats(clean)).toEqual([]);
  });
});

describe("kernel splats that leave the kernel stuck (real LKDTM consoles)", () => {
  it("reports each soft lockup report on its own, its excerpt stopping at the next", () => {
    const splats = findSplats(fixture("console/x86_64-lkdtm-softlockup.log"));
    expect(splats.length).toBeGreaterThanOrEqual(2);
    for (const s of splats) {
      expect(s.kind).toBe("soft-lockup");
      expect(s.excerpt).toContain("lkdtm_SOFTLOCKUP");
      expect(s.excerpt.match(/soft lockup - CPU#/g)).toHaveLength(1);
    }
  });

  it("reports a hung task with the stack of the blocked task", () => {
    const [first] = findSplats(fixture("console/x86_64-lkdtm-hung-task.log"));
    expect(first?.kind).toBe("hung-task");
    expect(first?.title).toMatch(/^INFO: task sh:\d+ blocked for more than 2 seconds\.$/);
    expect(first?.excerpt).toContain("lkdtm_HUNG_TASK");
  });
});

describe("an RCU stall inside a soft lockup (real console, rcupdate.rcu_cpu_stall_timeout=3)", () => {
  const splats = findSplats(fixture("console/x86_64-lkdtm-softlockup-rcu-stall.log"));

  it("reports the RCU self-detected stall and each soft lockup as records of their own, in order", () => {
    expect(splats.map((s) => s.kind)).toEqual([
      "rcu-stall",
      "soft-lockup",
      "soft-lockup",
      "rcu-stall",
      "soft-lockup",
    ]);
    expect(splats[0]?.title).toBe("rcu: INFO: rcu_sched self-detected stall on CPU");
    for (const s of splats)
      expect(s.excerpt.match(/self-detected stall|soft lockup - CPU#/g)).toHaveLength(1);
  });
});

describe("the kernel watch over a real console", () => {
  it("charges each splat to what ran, and completes excerpts charged before their trace ended", () => {
    const run = {
      arch: "x86_64",
      suite: "s",
      status: "error",
      problems: [],
      splats: [],
      tests: [],
      timings: {},
    } as ArchRun;
    const watch = new KernelWatch(run);
    const lines = fixture("console/x86_64-lkdtm-softlockup-rcu-stall.log").split("\n");
    const start = lines.findIndex((l) => l.includes("khil: guest ready"));
    for (const l of lines.slice(0, start)) watch.feed(l);
    const activity = watch.begin("command provoke-softlockup");
    for (const l of lines.slice(start)) {
      watch.feed(l);
      // A result line right after a report's first line: the worst moment to charge it.
      if (/self-detected stall|soft lockup - CPU#/.test(l)) activity.attribute("some_test");
    }
    activity.end();
    watch.finish();
    expect(run.splats.map((s) => s.kind)).toEqual([
      "rcu-stall",
      "soft-lockup",
      "soft-lockup",
      "rcu-stall",
      "soft-lockup",
    ]);
    expect(watch.stuck?.kind).toBe("rcu-stall");
    for (const s of run.splats) {
      expect(s.during).toBe("some_test");
      expect(s.excerpt.split("\n").length, s.title).toBeGreaterThan(5);
    }
  });
});

describe("what --debug and kmemleak exist to catch, each on a real console (test/capture/capture-splats.sh)", () => {
  // [fixture, kind, title, something only the whole report holds]
  const cases: [string, string, RegExp, RegExp][] = [
    ["rcu-usage", "lockdep", /^WARNING: suspicious RCU usage$/, /stack backtrace:[\s\S]*khil_splat_init/],
    [
      "unlock-balance",
      "lockdep",
      /^WARNING: bad unlock balance detected!$/,
      /khil_splat_map[\s\S]*khil_splat_init/,
    ],
    [
      "irq-inversion",
      "lockdep",
      /^WARNING: possible irq lock inversion dependency detected$/,
      /lock_a[\s\S]*HARDIRQ-unsafe lock[\s\S]*DEADLOCK/,
    ],
    [
      "held-to-user",
      "lockdep",
      /^WARNING: lock held when returning to user space!$/,
      /insmod\/\d+ is leaving the kernel with locks still held![\s\S]*held_mutex/,
    ],
    [
      "atomic-sleep",
      "sleep-in-atomic",
      /^BUG: sleeping function called from invalid context at \S+:\d+$/,
      /in_atomic\(\): 1[\s\S]*khil_splat_init/,
    ],
    [
      "exp-stall",
      "rcu-stall",
      /^rcu: INFO: rcu_sched detected expedited stalls on CPUs\/tasks: /,
      /NMI backtrace for cpu[\s\S]*spin_preempt_off/,
    ],
    [
      "kfence",
      "kfence",
      /^BUG: KFENCE: out-of-bounds read in khil_splat_init/,
      /Out-of-bounds read at[\s\S]*allocated by task[\s\S]*={20,}$/,
    ],
    [
      "kasan",
      "kasan",
      /^BUG: KASAN: slab-out-of-bounds in lkdtm_SLAB_LINEAR_OVERFLOW/,
      /Call Trace:[\s\S]*Allocated by task[\s\S]*={20,}$/,
    ],
    [
      "kmemleak",
      "kmemleak",
      /^kmemleak: 1 new suspected memory leaks \(see \/sys\/kernel\/debug\/kmemleak\)$/,
      /kmemleak: 1 new suspected memory leaks/,
    ],
  ];

  it.each(cases)("%s: a %s report, its excerpt the whole report", (name, kind, title, whole) => {
    const all = splatsByMarker(fixture(`console/x86_64-debug-${name}.log`));
    const first = all[0]?.splat;
    expect(first?.kind).toBe(kind);
    expect(first?.title).toMatch(title);
    expect(first?.excerpt).toMatch(whole);
    // Nothing before it: the boot of these kernels is clean, so the report is what the trigger caused.
    expect(all.slice(1).every((s) => s.splat.kind === kind)).toBe(true);
  });

  it("a lockdep report whose dump ends at </TASK> is cut there, not at its first blank line", () => {
    const [s] = splatsByMarker(fixture("console/x86_64-debug-rcu-usage.log"));
    expect(s?.splat.excerpt.split("\n").at(-1)?.trim()).toBe("</TASK>");
  });
});

describe("a kmemleak report's excerpt", () => {
  it("is kmemleak's own list, with the backtrace the console line lacks (a real list)", () => {
    const title = "kmemleak: 1 new suspected memory leaks (see /sys/kernel/debug/kmemleak)";
    const run = { splats: [{ kind: "kmemleak", title, excerpt: title, during: "kmemleak scan" }] } as ArchRun;
    withLeakList(run, fixture("kmemleak/x86_64-khil-splat-leak.txt"));
    const lines = run.splats[0]?.excerpt.split("\n") ?? [];
    expect(lines[0]).toBe(title);
    expect(lines[1]).toMatch(/^unreferenced object 0x[0-9a-f]+ \(size 128\):$/);
    expect(lines).toContain("    kmemleak_leak+0x1b/0xfbb [khil_splat]");
  });
});

describe("report titles no capture here has shown yet (crafted from the kernel's format strings)", () => {
  // kernel/locking/lockdep.c and kernel/rcu/tasks.h print these; each must fail a run on its own.
  it.each([
    ["lockdep", "WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected"],
    ["lockdep", "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected"],
    ["lockdep", "WARNING: held lock freed!"],
    ["lockdep", "WARNING: kworker/0:1/123 still has locks held!"],
    ["rcu-stall", "INFO: rcu_tasks detected stalls on tasks:"],
    ["rcu-stall", "INFO: rcu_tasks_trace detected stalls? (counter/flag 1/1)"],
  ])("a %s report titled %s", (kind, title) => {
    const [s] = findSplats(`[    5.000000] ${title}\n[    5.000001] 6.12.118 #1 Not tainted\n\n`);
    expect(s?.kind).toBe(kind);
    expect(s?.title).toBe(title);
  });
});
