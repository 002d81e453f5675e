import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { isAlive, startTime } from "./children.ts";

/** Why no one waits for a lock any more (the run's deadline was reached), once something said so. */
let stopped: string | undefined;

/** Ends every wait for a lock from now on with `why`: no run waits past its own deadline. */
export function stopWaiting(why: string): void {
  stopped = why;
}

/** The holder of a lock as a person would name it: its pid and command line. */
function holder(owner: string | undefined): string {
  const pid = owner?.split(" ")[0];
  if (!pid) return "another khil";
  // Two guests of one run (--shards, a matrix's cells) prepare the same cache entry: the first does it.
  if (pid === String(process.pid)) return "another part of this run";
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return `pid ${pid} (${cmd.slice(0, 120)})`;
  } catch {
    return `pid ${pid}`;
  }
}

/** Who holds a lock: a pid and when that process started, so that a reused pid is not taken for the owner. */
function ownerOf(dir: string): string | undefined {
  for (const [file, suffix] of [
    ["owner", ""],
    // a lock taken by an older khil: its pid alone
    ["pid", " ?"],
  ] as const)
    try {
      return `${readFileSync(join(dir, file), "utf8").trim()}${suffix}`;
    } catch {
      // not this one
    }
  return undefined;
}

function me(): string {
  return `${process.pid} ${startTime(process.pid) ?? "?"}`;
}

/** Whether the process an owner line names is gone (its pid dead, or now another process's). */
function gone(owner: string): boolean {
  const [pid = "", started = ""] = owner.split(" ");
  const n = Number(pid);
  if (!(n > 0)) return false;
  if (!isAlive(n)) return true;
  const now = startTime(n);
  return now !== undefined && started !== "?" && now !== started;
}

/**
 * Takes over a lock whose owner is gone: the lock directory is renamed away (atomic: of two waiters only one
 * moves it), then what was moved is checked to be the dead owner's. If a waiter moved a fresh lock taken
 * meanwhile, it puts it back: taking over is never check-then-remove.
 */
function takeOver(dir: string, dead: string): void {
  const tomb = `${dir}.stale-${process.pid}-${randomUUID()}`;
  try {
    renameSync(dir, tomb);
  } catch {
    return; // another waiter moved it first
  }
  if (ownerOf(tomb) === dead) {
    rmSync(tomb, { recursive: true, force: true });
    return;
  }
  // A fresh lock was moved: put it back. Should a third process have taken the name meanwhile, the moved
  // lock stays where it is (never deleted): its owner's release then finds nothing to remove.
  try {
    renameSync(tomb, dir);
  } catch {
    // left as it is: see above
  }
}

/** Gives the lock up: moved away first, so that no waiter's new lock can land in a half-removed one. */
function release(dir: string): void {
  if (ownerOf(dir) !== me()) return;
  const gone = `${dir}.released-${process.pid}-${randomUUID()}`;
  try {
    renameSync(dir, gone);
  } catch {
    return;
  }
  rmSync(gone, { recursive: true, force: true });
}

/**
 * Holds a directory lock while `fn` runs, so that two khil processes never build into the same directory at
 * once: the second waits. A lock left by a process that died is taken over.
 */
export async function withLock<T>(path: string, what: string, fn: () => Promise<T>): Promise<T> {
  const dir = `${path}.lock`;
  mkdirSync(dirname(dir), { recursive: true });
  let told = false;
  for (;;) {
    try {
      // The owner file is written before the directory takes the lock's name: no one ever sees it without.
      const fresh = `${dir}.new-${process.pid}-${randomUUID()}`;
      mkdirSync(fresh);
      writeFileSync(join(fresh, "owner"), me());
      try {
        renameSync(fresh, dir);
      } catch (e) {
        rmSync(fresh, { recursive: true, force: true });
        throw e;
      }
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "ENOTEMPTY") throw e;
      const owner = ownerOf(dir);
      if (owner && gone(owner)) {
        log(`taking over a lock its owner left behind (pid ${owner.split(" ")[0]} is gone): ${dir}`);
        takeOver(dir, owner);
        continue;
      }
      if (stopped) throw new KhilError(`${stopped} (waiting for ${holder(owner)} to finish ${what})`, 1);
      if (!told) {
        log(`waiting for ${holder(owner)} to finish ${what} (its lock: ${dir})`);
        told = true;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    release(dir);
  }
}
