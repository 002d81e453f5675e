/**
 * The bench's snapshot rows (guest/snapshot.ts): restore to SSH against a cold boot to SSH, `khil exec --
 * true` on a warm snapshot against the same with --no-snapshot, and `--repeat 10` of the default cell
 * against one run of it. Every snapshot is kept in the bench's own directory.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { log } from "../common/log.ts";
import { Guest } from "../guest/guest.ts";
import { commitSnapshot, snapshotTarget, targetPaths } from "../guest/snapshot.ts";
import { projectRoot } from "../host/paths.ts";
import { type BenchRow, row, seconds } from "./stats.ts";

interface Booting {
  arch: Arch;
  kernel: string;
  initrd: string;
  accel: "kvm" | "tcg";
  privateKey: string;
}

export async function snapshotRows(
  b: Booting,
  o: { runs: number; runDir: string },
  measured: { coldBoot: number; oneRun: number },
): Promise<BenchRow[]> {
  const snapshots = join(o.runDir, "snapshots");
  mkdirSync(snapshots, { recursive: true });
  const env = { KHIL_SNAPSHOTS: snapshots };
  const khil = (args: string[]) =>
    execa("node", [join(projectRoot, "bin/khil.js"), ...args], { reject: false, all: true, env });

  log("bench: restore of a ready guest to SSH");
  const booted = await Guest.boot({ ...b, runDir: o.runDir, savable: true });
  const t = snapshotTarget({ bench: "restore to SSH", kernel: b.kernel, initrd: b.initrd }, snapshots);
  const saving = await seconds(() => booted.saveState(targetPaths(t)));
  await booted.stop();
  const meta = commitSnapshot(t, {
    arch: b.arch.name,
    identity: {},
    savedAt: new Date().toISOString(),
    saveSeconds: saving,
  });
  const restores: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const g = await Guest.boot({ ...b, runDir: o.runDir, restore: targetPaths(t) });
    restores.push(g.bootSeconds);
    await g.stop();
  }
  const restore = row("restore to SSH (against a cold boot to SSH)", restores, [measured.coldBoot], {
    seconds: 0.5,
  });
  restore.note = `saving the ready guest took ${saving.toFixed(2)} s, ${(meta.bytes / 1024 ** 2).toFixed(0)} MiB`;

  log("bench: khil exec -- true, warm snapshot against --no-snapshot");
  await khil(["exec", "--arch", b.arch.name, "--", "true"]);
  const warm: number[] = [];
  const cold: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    warm.push(await seconds(() => khil(["exec", "--arch", b.arch.name, "--", "true"])));
    cold.push(await seconds(() => khil(["exec", "--arch", b.arch.name, "--no-snapshot", "--", "true"])));
  }
  const exec = row("khil exec -- true: warm snapshot (against --no-snapshot)", warm, cold, { seconds: 1.0 });

  log("bench: boot-and-test --repeat 10 against one run");
  const repeat = await seconds(() => khil(["boot-and-test", "--arch", b.arch.name, "--repeat", "10"]));
  const ten = row("boot-and-test --repeat 10 (against one run)", [repeat], [measured.oneRun], { ratio: 2.5 });
  ten.note = `10 x one run would be ${(10 * measured.oneRun).toFixed(0)} s`;
  return [restore, exec, ten];
}
