import { appendFileSync, createWriteStream, rmSync, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import type { ResultPromise } from "execa";
import type { Arch } from "../arch/arch.ts";
import { InfraError } from "../common/errors.ts";
import { lineSplitter } from "../common/lines.ts";
import { hostFacts } from "./host-facts.ts";
import { type Accel, kernelCmdline, type QemuPlan, startQemu } from "./qemu.ts";
import { Qmp } from "./qmp.ts";
import { GuestSsh } from "./ssh.ts";

export const READY_MARKER = "khil: guest ready:";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface BootOptions {
  arch: Arch;
  kernel: string;
  initrd: string;
  accel: Accel;
  privateKey: string;
  runDir: string;
  memoryMiB?: number;
  cpus?: number;
  bootTimeoutMs?: number;
  cmdline?: string[];
  /** Sees every console line from the first byte on (boot included), for as long as the guest lives. */
  onConsoleLine?: (line: string) => void;
  /** A snapshot's state file (snapshot.ts): the guest is restored from it, ready, instead of booting. */
  restore?: string;
}

/** The QEMU plan of a guest, without what differs between two starts of the same guest (port, sockets). */
export async function guestPlan(o: BootOptions): Promise<QemuPlan> {
  return {
    kernel: o.kernel,
    initrd: o.initrd,
    accel: o.accel,
    memoryMiB: o.memoryMiB ?? 2048,
    cpus: o.cpus ?? 2,
    cmdline: kernelCmdline(o.arch, await hostFacts(o.arch), o.cmdline),
  };
}

type LineListener = (line: string) => void;

/** A running QEMU guest reached over SSH. Its serial console goes to console.log from the first byte. */
/** A signal's name from its number, as execa names the signal a process died of. */
function signalName(n: number): string | undefined {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0];
}

export class Guest {
  readonly consoleLog: string;
  private readonly listeners = new Set<LineListener>();
  private readonly tail: string[] = [];
  private exited = false;
  private exitInfo = "";
  ssh!: GuestSsh;
  port = 0;
  bootSeconds = 0;
  /** When the guest's init printed READY_MARKER: the rest of bootSeconds is the SSH handshake. */
  markerSeconds = 0;
  private markerAt = 0;

  private constructor(
    readonly arch: Arch,
    readonly accel: Accel,
    private readonly proc: ResultPromise,
    private readonly console: WriteStream,
    runDir: string,
  ) {
    this.consoleLog = join(runDir, "console.log");
    const split = lineSplitter((line) => {
      this.tail.push(line);
      if (this.tail.length > 40) this.tail.shift();
      for (const l of this.listeners) l(line);
    });
    proc.stdout?.on("data", (chunk: Buffer) => {
      console.write(chunk);
      split(chunk);
    });
    proc.then((r) => {
      this.exited = true;
      // QEMU catches TERM, INT and HUP, says "terminating on signal N" and exits 0: killed all the same.
      const caught = /terminating on signal (\d+)/.exec(String(r.stderr ?? ""))?.[1];
      const signal = r.signal ?? (caught ? signalName(Number(caught)) : undefined);
      if (signal && !this.stopping) this.killedBy = signal;
      this.exitedByItself = r.exitCode === 0 && !signal && !this.stopping;
      this.exitInfo = `${r.exitCode ?? r.signal}: ${String(r.stderr ?? "")
        .trim()
        .split("\n")
        .slice(-3)
        .join(" / ")}`;
    });
  }

  /** The guest's QMP socket: in the temporary directory, since a unix socket's path is short (108 bytes). */
  qmpPath = "";
  private privateKey = "";

  static async boot(o: BootOptions): Promise<Guest> {
    const plan = await guestPlan(o);
    for (let attempt = 0; ; attempt++) {
      const consoleStream = createWriteStream(join(o.runDir, "console.log"), { flags: "a" });
      const port = await freePort();
      const qmp = join(tmpdir(), `khil-qmp-${process.pid}-${port}.sock`);
      const started = Date.now();
      const proc = startQemu(o.arch, { ...plan, sshPort: port, qmp, incoming: o.restore });
      // Whoever checks that a run left no guest behind checks these, not every QEMU on the host.
      appendFileSync(join(o.runDir, "qemu.pids"), `${proc.pid}\n`);
      const g = new Guest(o.arch, o.accel, proc, consoleStream, o.runDir);
      g.port = port;
      g.qmpPath = qmp;
      g.privateKey = o.privateKey;
      if (o.onConsoleLine) g.onLine(o.onConsoleLine);
      try {
        if (o.restore) await g.resumeIncoming(o.bootTimeoutMs ?? 60_000);
        // A restored guest printed its readiness before it was saved: SSH is tried from the start.
        await g.waitForSsh(o.privateKey, o.bootTimeoutMs ?? 60_000, Boolean(o.restore));
        g.bootSeconds = (Date.now() - started) / 1000;
        g.markerSeconds = (g.markerAt - started) / 1000;
        return g;
      } catch (e) {
        await g.stop();
        // Another process took the port between our probe and QEMU's bind: try another.
        if (attempt < 2 && /host forwarding rule/.test(g.exitInfo)) continue;
        throw e;
      }
    }
  }

  onLine(l: LineListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  consoleTail(n = 15): string {
    return this.tail.slice(-n).join("\n");
  }

  /**
   * The signal that ended QEMU when khil did not send it (the host's OOM killer, another user's kill): the
   * guest's end then says nothing about its kernel. A panic ends QEMU by itself (-no-reboot), with no signal.
   */
  killedBy: string | undefined;
  /**
   * QEMU ended cleanly without khil asking: the guest reset or powered itself off (-no-reboot), which only
   * its kernel does. QEMU failing to start or dying of its own fault exits otherwise.
   */
  exitedByItself = false;
  private stopping = false;

  get running(): boolean {
    return !this.exited;
  }

  /**
   * Waits up to `ms` for a QEMU whose SSH connection is gone to be seen exiting: the socket's close can
   * reach khil before QEMU's exit status does, and who ended QEMU (killedBy) decides whose fault it is.
   */
  async settle(ms = 3000): Promise<void> {
    if (this.exited || !this.ssh?.lost) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.proc, new Promise((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  private async waitForSsh(privateKey: string, timeoutMs: number, readyAlready = false): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let ready = readyAlready;
    const off = this.onLine((l) => {
      if (l.includes(READY_MARKER) && !ready) {
        ready = true;
        this.markerAt = Date.now();
      }
    });
    try {
      let lastErr = "";
      while (Date.now() < deadline) {
        if (this.exited)
          throw new InfraError(
            `guest exited during boot (qemu ${this.exitInfo}); console ends with:\n${this.consoleTail()}`,
            "boot",
            this.exitedByItself ? "kernel" : undefined,
          );
        if (ready) {
          try {
            this.ssh = await GuestSsh.connect(
              this.port,
              privateKey,
              Math.max(1000, Math.min(10_000, deadline - Date.now())),
            );
            return;
          } catch (e) {
            lastErr = (e as Error).message;
          }
        }
        await new Promise((r) => setTimeout(r, ready ? 250 : 100));
      }
      throw new InfraError(
        `timeout: boot-to-ssh after ${Math.round(timeoutMs / 1000)} s${ready ? ` (guest ready, ssh: ${lastErr})` : " (no readiness marker on the console)"}; console ends with:\n${this.consoleTail()}`,
        "boot",
      );
    } finally {
      off();
    }
  }

  /**
   * Saves the running guest's whole state to `file` (QEMU migration), then lets it go on. The SSH session
   * is closed first, so that the saved guest holds no half-open connection, and opened again after.
   */
  async saveState(file: string, timeoutMs = 120_000): Promise<void> {
    this.ssh?.close();
    // The guest's side of the session ends before it is frozen.
    await new Promise((r) => setTimeout(r, 100));
    const q = await Qmp.open(this.qmpPath);
    try {
      await q.execute("stop");
      // The default bandwidth cap (128 MiB/s) is for live migration over a network; a paused guest to a
      // local file goes as fast as the disk takes it.
      await q.execute("migrate-set-parameters", { "max-bandwidth": 64 * 1024 ** 3 });
      await q.execute("migrate", { uri: `exec:cat > '${file.replace(/'/g, "'\\''")}'` });
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await q.execute<{ status?: string; "error-desc"?: string }>("query-migrate");
        if (m.status === "completed") break;
        if (m.status === "failed" || m.status === "cancelled")
          throw new Error(`saving the guest failed: ${m["error-desc"] ?? m.status}`);
        if (Date.now() > deadline) throw new Error(`saving the guest took over ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await q.execute("cont").catch(() => {});
      q.close();
      this.ssh = await GuestSsh.connect(this.port, this.privateKey, 10_000);
    }
  }

  /**
   * Waits for QEMU to have loaded the incoming state, then runs the guest: the state records the saved
   * guest's run state, and it was saved stopped (saveState), so QEMU leaves it paused however it was started.
   */
  private async resumeIncoming(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const q = await Qmp.open(this.qmpPath);
    try {
      for (;;) {
        if (this.exited) throw new InfraError(`loading the snapshot failed (qemu ${this.exitInfo})`, "boot");
        const { status } = await q.execute<{ status: string }>("query-status");
        if (status === "running") return;
        if (status !== "inmigrate") {
          await q.execute("cont");
          return;
        }
        if (Date.now() > deadline)
          throw new InfraError(`loading the snapshot took over ${Math.round(timeoutMs / 1000)} s`, "boot");
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      q.close();
    }
  }

  /**
   * Sets a restored guest's CLOCK_REALTIME to the host's: the saved guest's wall clock stopped when it was
   * saved (CLOCK_MONOTONIC rightly continues from there: the guest did not run in between).
   */
  async syncRealtime(): Promise<void> {
    const r = await this.ssh.capture(`date -u -s @${Math.round(Date.now() / 1000)} >/dev/null`);
    if (r.code !== 0)
      throw new Error(`setting the restored guest's clock failed (exit ${r.code}): ${r.err.trim()}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    try {
      this.ssh?.close();
    } catch {
      // the connection may already be gone
    }
    if (!this.exited) this.proc.kill("SIGKILL");
    await this.proc.catch(() => {});
    if (this.qmpPath) rmSync(this.qmpPath, { force: true });
    await new Promise((r) => this.console.end(r));
  }
}
