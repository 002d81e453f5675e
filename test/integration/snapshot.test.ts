import { mkdtempSync, readdirSync, readFileSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";
import { plantedWarnMbox } from "../series.ts";

/** The guest's clocks as one line: uptime (CLOCK_BOOTTIME-ish, s), wall clock (s since the epoch). */
const CLOCKS = ["sh", "-c", "echo clocks $(cut -d' ' -f1 /proc/uptime) $(date +%s)"];

function clocksOf(stdout: string): { uptime: number; wall: number } {
  const m = /^clocks (\S+) (\d+)$/m.exec(stdout);
  if (!m) throw new Error(`no clocks line in:\n${stdout}`);
  return { uptime: Number(m[1]), wall: Number(m[2]) };
}

describe("snapshots of a ready guest (x86_64)", () => {
  it(
    "--repeat 2 of the timer probe: the first run boots and saves, the second is restored and passes with the same clocks",
    async () => {
      const r = await khil([
        ...["boot-and-test", "--arch", "x86_64", "--suite", "bpf-timer-probe", "--repeat", "2"],
      ]);
      expect(r.exitCode, r.all).toBe(0);
      const { dir, results } = resultsOf(r.stdout);
      expect(qemuLeftIn(dir)).toEqual([]);
      const [first, second] = results.runs;
      expect(first?.guest?.restored).toBeUndefined();
      expect(second?.guest?.restored?.snapshot).toMatch(/^[0-9a-f]{24}$/);
      expect(r.stderr).toMatch(/saved snapshot [0-9a-f]{24} \(\d+ MiB\)/);
      // Never silently: the summary says which run was restored, and from what.
      expect(r.stdout).toMatch(/restored from snapshot [0-9a-f]{24} \(saved \S+\) in \d+\.\d+ s/);
      // The restored guest keeps the booted one's clock: same clocksource, high-resolution hrtimers, and the
      // probe's checks (latency bounds included) pass in it as in the booted one.
      expect(second?.guest?.clocksource).toBe(first?.guest?.clocksource);
      expect(second?.guest?.hrtimerResolutionNs).toBe(1);
      expect(second?.tests.length).toBe(first?.tests.length);
      expect(second?.tests.filter((t) => t.verdict !== "pass" && t.verdict !== "skip")).toEqual([]);
      expect(second?.measures?.map((m) => m.name)).toEqual(first?.measures?.map((m) => m.name));
    },
    HOUR,
  );

  it(
    "exec: restored from the snapshot its first call saved, clocks going on; a changed kernel or a damaged snapshot boots cold and says why",
    async () => {
      const env = { KHIL_SNAPSHOTS: mkdtempSync(join(tmpdir(), "khil-snapshots-")) };
      const exec = (extra: string[] = []) =>
        khil(["exec", "--arch", "x86_64", ...extra, "--", ...CLOCKS], { env });
      const cold = await exec();
      expect(cold.exitCode, cold.all).toBe(0);
      expect(cold.stderr).toMatch(/booting cold: no snapshot of an x86_64 guest/);
      expect(cold.stderr).toMatch(/saved snapshot/);
      const booted = clocksOf(cold.stdout);
      const restored = await exec();
      expect(restored.exitCode, restored.all).toBe(0);
      expect(restored.stderr).toMatch(/restored x86_64 \S+ from snapshot [0-9a-f]{24}/);
      const again = clocksOf(restored.stdout);
      // CLOCK_MONOTONIC goes on from where the guest was saved (it did not run in between): a little later
      // than at the save, not the host's time since. The wall clock is the host's again.
      expect(again.uptime).toBeGreaterThanOrEqual(booted.uptime - 5);
      expect(again.uptime).toBeLessThan(booted.uptime + 30);
      expect(Math.abs(again.wall - Date.now() / 1000)).toBeLessThan(5);
      // Another kernel (the same tree with a patch) is another guest: booted cold, the reason naming it.
      const warn = await exec(["--series", await plantedWarnMbox(mkdtempSync(join(tmpdir(), "khil-warn-")))]);
      expect(warn.exitCode, warn.all).toBe(0);
      expect(warn.stderr).toMatch(
        /booting cold: no snapshot of this guest: the nearest \(\S+, saved \S+\) differs in kernel\b/,
      );
      // A snapshot that cannot be restored (here cut short) falls back to a cold boot, with QEMU's reason.
      for (const key of readdirSync(env.KHIL_SNAPSHOTS)) {
        const dir = join(env.KHIL_SNAPSHOTS, key);
        const meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as { files: { state: string } };
        truncateSync(join(dir, meta.files.state), 4096);
      }
      const damaged = await exec();
      expect(damaged.exitCode, damaged.all).toBe(0);
      expect(damaged.stderr).toMatch(/booting cold: restoring snapshot [0-9a-f]{24} failed: /);
      expect(clocksOf(damaged.stdout).uptime).toBeLessThan(60);
    },
    HOUR,
  );
  it(
    "--retries: a test failed by what an earlier test did to its guest passes in a fresh restored copy, and fails again in the damaged guest with --no-snapshot",
    async () => {
      const suite = [
        "boot-and-test",
        "--arch",
        "x86_64",
        "--suite",
        "test/fixtures/suites/poisoned-tmp.yaml",
      ];
      const fresh = await khil([...suite, "--retries", "1"]);
      expect(fresh.exitCode, fresh.all).toBe(0);
      const { dir, results } = resultsOf(fresh.stdout);
      // Every QEMU the run started, the fresh copy's included, is gone.
      expect(qemuLeftIn(dir)).toEqual([]);
      expect(readFileSync(join(dir, "qemu.pids"), "utf8").trim().split("\n")).toHaveLength(2);
      const run = results.runs[0];
      expect(run?.tests.find((t) => t.test === "fills-tmp")?.verdict).toBe("pass");
      expect(run?.tests.find((t) => t.test === "writes-tmp")).toMatchObject({
        verdict: "flaky",
        reason: "failed, then passed on attempt 2",
      });
      expect(fresh.stderr).toMatch(/restored x86_64 \S+ from snapshot [0-9a-f]{24}/);
      expect(readFileSync(join(dir, "test-x86_64-writes-tmp.log"), "utf8")).toMatch(
        /# khil: writes-tmp failed, attempt 2 in a fresh guest restored from the snapshot:\nwrote$/m,
      );
      // The same run in one guest: the damage stays, and the retry fails as the first attempt did.
      const same = await khil([...suite, "--retries", "1", "--no-snapshot"]);
      expect(same.exitCode, same.all).toBe(1);
      expect(
        resultsOf(same.stdout).results.runs[0]?.tests.find((t) => t.test === "writes-tmp"),
      ).toMatchObject({
        verdict: "fail",
        reason: "failed on all 2 attempts",
      });
    },
    HOUR,
  );
});
