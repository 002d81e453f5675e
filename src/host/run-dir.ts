import { mkdirSync, renameSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { runsDir } from "./paths.ts";

/** A directory per run, named so they sort by time; `runs/latest` points at the newest. */
export function createRunDir(kind: string): string {
  const base = runsDir();
  mkdirSync(base, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").replace("T", "_").slice(0, 19);
  const dir = join(base, `${stamp}-${kind}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  // Replace the link atomically so a concurrent run never sees it missing.
  const tmp = join(base, `.latest-${process.pid}`);
  symlinkSync(dir, tmp);
  renameSync(tmp, join(base, "latest"));
  return dir;
}
