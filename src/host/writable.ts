import { mkdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";

/** What a full or read-only disk raises, named for the user. */
export function diskProblem(code: string | undefined): string | undefined {
  if (code === "ENOSPC" || code === "EDQUOT") return "is full";
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") return "is not writable";
  return undefined;
}

/**
 * Checks up front that khil can write where it keeps its caches and runs, so that a read-only or full disk
 * is one line naming the directory and the fix, not a stack trace from deep inside a build.
 */
export function checkWritable(dir: string, envVar: string, needGiB: number): void {
  try {
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.khil-write-probe-${process.pid}`);
    writeFileSync(probe, "x".repeat(4096));
    rmSync(probe);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    // A recursive mkdir on a read-only mount reports ENOENT, so any errno here is the directory's fault.
    const what = diskProblem(code) ?? "cannot be created or written";
    const fix =
      what === "is full"
        ? `free space there or set ${envVar} to a directory with ${needGiB} GiB free`
        : `set ${envVar} to a writable directory`;
    throw new KhilError(`${dir} ${what} (${code}): ${fix}`);
  }
  const s = statfsSync(dir);
  const freeGiB = (s.bavail * s.bsize) / 2 ** 30;
  if (freeGiB < needGiB)
    log(`warning: ${dir} has ${freeGiB.toFixed(1)} GiB free; a kernel build needs about ${needGiB} GiB`);
}
