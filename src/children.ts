import { execaSync, type ResultPromise } from "execa";

/**
 * Every QEMU khil starts is registered here and killed when khil ends, however it ends: normal exit,
 * exception, Ctrl-C or SIGTERM. QEMU is also started under `setpriv --pdeathsig KILL`, so even a khil killed
 * with SIGKILL takes its guests with it.
 */
const live = new Set<ResultPromise>();
let installed = false;

function killAll(): void {
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

export function track(p: ResultPromise): void {
  live.add(p);
  p.finally(() => live.delete(p)).catch(() => {});
  if (installed) return;
  installed = true;
  process.on("exit", killAll);
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nkhil: ${sig}: stopping ${live.size} guest(s)\n`);
      const dying = [...live];
      killAll();
      // Reap them before exiting, so that no QEMU (not even a zombie) outlives khil.
      const reaped = Promise.allSettled(dying);
      const deadline = new Promise((r) => setTimeout(r, 5000));
      void Promise.race([reaped, deadline]).then(() => process.exit(code));
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
  } catch {
    return false;
  }
}
