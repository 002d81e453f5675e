import { randomUUID } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  createWriteStream,
  openSync,
  rmSync,
  statfsSync,
  type WriteStream,
} from "node:fs";
import { createServer } from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import type { Arch } from "../arch/arch.ts";
import { InfraError } from "../common/errors.ts";
import { lineSplitter } from "../common/lines.ts";
import { hostFacts } from "./host-facts.ts";
import { type Accel, kernelCmdline, type QemuPlan, startQemu } from "./qemu.ts";
import { Qmp } from "./qmp.ts";
import { GuestSsh, shellQuote } from "./ssh.ts";

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
  /** A snapshot's files (snapshot.ts): the guest is restored from them, ready, instead of booting. */
  restore?: { state: string; ram: string };
  /** Boot with the RAM in a file of the guest's own, so that saveState can copy it (snapshot.ts). */
  savable?: boolean;
  /** Under TCG, every vCPU on one host thread (QemuPlan.tcgSingleThread). */
  tcgSingleThread?: boolean;
}

/** The descriptor a savable guest's QEMU gets its RAM file on (the first after stdin, stdout, stderr). */
const RAM_FD = 3;

/** A guest's RAM: QEMU's plan for it where it is a file, the descriptor handed over, or why it is not a file. */
interface GuestRam {
  plan?: QemuPlan["ram"];
  fd?: number;
  refused?: string;
}

/** Where a savable guest's RAM lives while it runs: `$KHIL_RAM_DIR`, else /dev/shm (memory, like QEMU's own). */
function ramDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KHIL_RAM_DIR ?? "/dev/shm";
}

/**
 * Why a guest of `memoryMiB` cannot have its RAM in a file in `dir`, if it cannot: a tmpfs without room for
 * all of it would end QEMU with SIGBUS once the guest touched enough, which must never pass for the kernel's
 * fault.
 */
function ramFileRefused(dir: string, memoryMiB: number): string | undefined {
  try {
    const fs = statfsSync(dir);
    const free = Math.floor((fs.bavail * fs.bsize) / 1024 ** 2);
    if (free < memoryMiB) return `${dir} has ${free} MiB free and the guest's RAM is ${memoryMiB} MiB`;
  } catch (e) {
    return `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (set KHIL_RAM_DIR to a tmpfs)`;
  }
  return undefined;
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
    ...(o.tcgSingleThread ? { tcgSingleThread: true } : {}),
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
      const ram = Guest.ramFor(o, plan.memoryMiB);
      const started = Date.now();
      const proc = startQemu(
        o.arch,
        { ...plan, sshPort: port, qmp, incoming: Boolean(o.restore), ram: ram.plan },
        "pipe",
        ram.fd,
      );
      // QEMU holds the RAM file now; khil's own descriptor of it is not needed.
      if (ram.fd !== undefined) closeSync(ram.fd);
      // Whoever checks that a run left no guest behind checks these, not every QEMU on the host.
      appendFileSync(join(o.runDir, "qemu.pids"), `${proc.pid}\n`);
      const g = new Guest(o.arch, o.accel, proc, consoleStream, o.runDir);
      g.port = port;
      g.qmpPath = qmp;
      g.privateKey = o.privateKey;
      g.ram = ram;
      if (o.onConsoleLine) g.onLine(o.onConsoleLine);
      try {
        if (o.restore) await g.resumeIncoming(o.restore.state, o.bootTimeoutMs ?? 60_000);
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

  /**
   * Where the guest's RAM is. A restore maps its snapshot's RAM file. A savable boot gets a file of its own
   * where there is room for one: created and unlinked by khil before QEMU starts, and handed to QEMU as an
   * open descriptor (its fd 3, `/dev/fd/3`), so that no end of khil or QEMU, not even SIGKILL, leaves a
   * guest's RAM behind in /dev/shm. Otherwise anonymous memory, as QEMU's default, and the reason.
   */
  private static ramFor(o: BootOptions, memoryMiB: number): GuestRam {
    if (o.restore) return { plan: { path: o.restore.ram, shared: false } };
    if (!o.savable) return { refused: "it was not booted to be saved" };
    const dir = ramDir();
    const refused = ramFileRefused(dir, memoryMiB);
    if (refused) return { refused: `its RAM could not be kept in a file: ${refused}` };
    const path = join(dir, `khil-ram-${process.pid}-${randomUUID().slice(0, 8)}`);
    const fd = openSync(path, "wx+", 0o600);
    rmSync(path);
    return { plan: { path: `/dev/fd/${RAM_FD}`, shared: true }, fd };
  }

  private ram: GuestRam = {};

  /** The guest's RAM is a file (its own or a snapshot's): a SIGBUS of QEMU is then the host's, not the guest's. */
  get ramInFile(): boolean {
    return this.ram.plan !== undefined;
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
   * Saves the running guest to a snapshot's files, then lets it go on: its device state by migration with
   * x-ignore-shared (the RAM left out: a few hundred KiB), and its RAM as a sparse copy of the file it runs in,
   * both while it is stopped so that they agree. The SSH session is closed first, so that the saved guest
   * holds no half-open connection, and opened again after.
   */
  async saveState(to: { state: string; ram: string }, timeoutMs = 120_000): Promise<void> {
    if (!this.ram.plan?.shared)
      throw new Error(`the guest cannot be saved: ${this.ram.refused ?? "its RAM is a snapshot's"}`);
    // The RAM file QEMU was handed (ramFor): its fd 3.
    const ram = `/proc/${this.proc.pid}/fd/${RAM_FD}`;
    this.ssh?.close();
    // The guest's side of the session ends before it is frozen.
    await new Promise((r) => setTimeout(r, 100));
    const q = await Qmp.open(this.qmpPath);
    try {
      await q.execute("stop");
      await q.execute("migrate-set-capabilities", {
        capabilities: [{ capability: "x-ignore-shared", state: true }],
      });
      await q.execute("migrate", { uri: `exec:cat > ${shellQuote([to.state])}` });
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await q.execute<{ status?: string; "error-desc"?: string }>("query-migrate");
        if (m.status === "completed") break;
        if (m.status === "failed" || m.status === "cancelled")
          throw new Error(`saving the guest failed: ${m["error-desc"] ?? m.status}`);
        if (Date.now() > deadline) throw new Error(`saving the guest took over ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // Pages the guest never touched (or zeroed) stay holes: a 2 GiB guest's RAM takes ~70 MiB on disk.
      const cp = await execa("cp", ["--sparse=always", ram, to.ram], { reject: false, timeout: timeoutMs });
      if (cp.exitCode !== 0)
        throw new Error(`copying the guest's RAM failed: ${cp.stderr.trim() || cp.exitCode}`);
    } finally {
      await q.execute("cont").catch(() => {});
      q.close();
      this.ssh = await GuestSsh.connect(this.port, this.privateKey, 10_000);
    }
  }

  /**
   * Loads a snapshot's device state into QEMU (its RAM is already mapped) and runs the guest: the state
   * records the saved guest's run state, and it was saved stopped (saveState), so QEMU would leave it paused.
   */
  private async resumeIncoming(state: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const q = await Qmp.open(this.qmpPath);
    try {
      // Both ends of a migration must agree that shared RAM is left out of the stream.
      await q.execute("migrate-set-capabilities", {
        capabilities: [{ capability: "x-ignore-shared", state: true }],
      });
      await q.execute("migrate-incoming", { uri: `exec:cat ${shellQuote([state])}` });
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
