import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Guest } from "../guest/guest.ts";
import type { ArchRun } from "../report/results.ts";
import type { KernelWatch } from "./kernel-log.ts";

const KMEMLEAK = "/sys/kernel/debug/kmemleak";

/** Lines of kmemleak's own list kept in a splat's excerpt; the whole list is in kmemleak-<arch>.log. */
const EXCERPT_LINES = 60;

/**
 * On a kernel with kmemleak (kernel-config/kmemleak.config), asks it for scans after the last command: its
 * own scan thread runs every 10 minutes, longer than a run. kmemleak reports objects unreferenced for 5 s or
 * more, so a leak of the last seconds of a run can go unseen. Returns kmemleak's list of what it reported
 * (empty when nothing), kept as kmemleak-<arch>.log; undefined on a kernel without kmemleak.
 */
export async function scanForLeaks(
  g: Guest,
  watch: KernelWatch,
  run: ArchRun,
  runDir: string,
): Promise<string | undefined> {
  const present = await g.ssh.capture(`test -w ${KMEMLEAK}`, 10_000).catch(() => undefined);
  if (present?.code !== 0) return undefined;
  const a = watch.begin("kmemleak scan");
  let list = "";
  try {
    // Twice: a scan only reports an object whose contents did not change since the scan before (its
    // checksum), so an object no scan has seen yet is never reported by the first one.
    await g.ssh.capture(`${a.marker}echo scan > ${KMEMLEAK} && echo scan > ${KMEMLEAK}`, 300_000, a.signal);
    list = (await g.ssh.capture(`cat ${KMEMLEAK}`, 30_000, a.signal)).out;
  } finally {
    a.end();
  }
  await watch.readDmesg(g, runDir);
  writeFileSync(join(runDir, `kmemleak-${run.arch}.log`), list);
  return list;
}

/**
 * A leak's report on the console names no backtrace: the list kmemleak keeps does, and becomes the
 * excerpt. Called once the watch has closed every excerpt, which would otherwise overwrite it.
 */
export function withLeakList(run: ArchRun, list: string): void {
  for (const s of run.splats)
    if (s.kind === "kmemleak" && list)
      s.excerpt = [s.title, ...list.split("\n").slice(0, EXCERPT_LINES)].join("\n").trimEnd();
}
