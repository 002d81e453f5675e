import { readFileSync } from "node:fs";
import { execaSync, type ResultPromise } from "execa";

/**
 * Every QEMU and make khil starts is registered here and killed when khil ends, however it ends: normal
 * exit, exception, Ctrl-C or SIGTERM, or the whole run's deadline. QEMU is also started under
 * `setpriv --pdeathsig KILL`, so even a khil killed with SIGKILL takes its guests with it.
 */
const live = new Set<ResultPromise>();
/** Work khil started elsewhere (a LAVA job), undone like a process: on Ctrl-C or the run's deadline. */
const remote = new Set<() => Promise<unknown>>();

/** What must be written before khil exits on a signal: the results gathered so far (a run's, a matrix's). */
const keepers = new Set<(signal: string) => void>();

let installed = false;

/**
 * Registers what to write when a signal ends khil, after its processes are stopped: a run interrupted by
 * Ctrl-C keeps its results and reports. Returns what to call once that work has written them itself.
 */
export function onInterrupt(keep: (signal: string) => void): () => void {
  keepers.add(keep);
  installHandlers();
  return () => keepers.delete(keep);
}

function signalAll(signal: NodeJS.Signals): ResultPromise[] {
  const all = [...live];
  for (const p of all) {
    try {
      p.kill(signal);
    } catch {
      // already gone
    }
  }
  live.clear();
  return all;
}

/**
 * Stops every tracked process and resolves when they are reaped. SIGTERM first: make then deletes the
 * objects it was writing (a compiler killed outright leaves a truncated .o that the next build takes as up
 * to date); execa sends SIGKILL to whatever is still there 5 s later.
 */
export function stopTracked(): Promise<unknown> {
  const dying = signalAll("SIGTERM");
  const undone = [...remote].map((undo) => undo().catch(() => {}));
  remote.clear();
  const reaped = Promise.allSettled([...dying, ...undone]);
  return Promise.race([reaped, new Promise((r) => setTimeout(r, 7000))]);
}

/** Returns what to call once the work has ended by itself. */
export function trackRemote(undo: () => Promise<unknown>): () => void {
  remote.add(undo);
  installHandlers();
  return () => remote.delete(undo);
}

export function track(p: ResultPromise): void {
  live.add(p);
  p.finally(() => live.delete(p)).catch(() => {});
  installHandlers();
}

function installHandlers(): void {
  if (installed) return;
  installed = true;
  // At exit there is no time left for SIGTERM's grace.
  process.on("exit", () => signalAll("SIGKILL"));
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.on(sig, () => {
      process.stderr.write(
        `\nkhil: ${sig}: stopping ${live.size} process(es) (guests, builds) and ${remote.size} lab job(s)\n`,
      );
      // Reap them before exiting, so that no QEMU (not even a zombie) outlives khil; then what was gathered
      // is written, each keeper on its own (one that fails must not cost the others theirs).
      void stopTracked().then(() => {
        for (const keep of keepers)
          try {
            keep(sig);
          } catch (e) {
            process.stderr.write(`khil: writing results after ${sig} failed: ${(e as Error).message}\n`);
          }
        process.exit(code);
      });
    });
  }
}

let pdeathsig: boolean | undefined;
export function deathSignalPrefix(): string[] {
  if (pdeathsig === undefined) {
    pdeathsig = execaSync("setpriv", ["--pdeathsig", "KILL", "true"], { reject: false }).exitCode === 0;
  }
  return pdeathsig ? ["setpriv", "--pdeathsig", "KILL", "--"] : [];
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists, it is only not ours to signal.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * When a process started, in clock ticks since boot (/proc/PID/stat's 22nd field): with its pid, what names
 * one process, since a pid is reused once its process is gone. Undefined when there is no such process.
 */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name (field 2) may hold spaces and parentheses: count fields after its closing one
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
