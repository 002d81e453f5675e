import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { splatsByMarker } from "../src/parse/splats.ts";
import type { ArchRun } from "../src/report/results.ts";
import { KernelWatch } from "../src/run/kernel-log.ts";

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
