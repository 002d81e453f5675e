import { randomUUID } from "node:crypto";
import { Readable, type Writable } from "node:stream";
import ssh2 from "ssh2";
import { create as tarCreate } from "tar";

/** Quotes argv for the guest's POSIX shell: SSH carries one command string. */
export function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

export interface ExecResult {
  code: number | null;
  signal?: string;
  timedOut: boolean;
  /** Stopped through `io.abort` (e.g. the kernel locked up under it). */
  aborted?: boolean;
}

interface ExecIo {
  stdout?: Writable;
  stderr?: Writable;
  stdin?: Readable;
  timeoutMs?: number;
  abort?: AbortSignal;
}

/** The guest's dropbear refuses a longer command (its MAX_CMD_LEN is 9000 bytes) with "Unable to exec". */
const MAX_COMMAND = 8000;

export class GuestSsh {
  /** The connection is gone (the guest died, or its QEMU did): nothing more can run over it. */
  lost = false;

  private constructor(private readonly client: ssh2.Client) {
    client.once("close", () => {
      this.lost = true;
    });
  }

  static connect(port: number, privateKey: string, timeoutMs: number): Promise<GuestSsh> {
    return new Promise((resolve, reject) => {
      const c = new ssh2.Client();
      let ready = false;
      c.once("ready", () => {
        ready = true;
        resolve(new GuestSsh(c));
      });
      // Kept for the connection's whole life: ssh2 can report more than one error, and one after `ready`
      // (the guest died) must not crash khil. Commands in flight then see their channel close.
      c.on("error", (e) => {
        if (ready) return;
        c.end();
        reject(e);
      });
      // A server that closes the connection after its greeting gets no error event, only this.
      c.once("close", () => {
        if (!ready) reject(new Error("connection closed before the SSH handshake finished"));
      });
      c.connect({ host: "127.0.0.1", port, username: "root", privateKey, readyTimeout: timeoutMs });
    });
  }

  /**
   * Runs a command, streaming its output; on timeout the channel is closed and `timedOut` set. A command
   * too long for the guest's server (a selection of hundreds of tests) is written to a file there first.
   */
  async exec(command: string, io: ExecIo = {}): Promise<ExecResult> {
    if (Buffer.byteLength(command) <= MAX_COMMAND) return this.execOnce(command, io);
    const file = `/tmp/khil-command-${randomUUID()}`;
    const written = await this.execOnce(`cat > ${file}`, {
      stdin: Readable.from([command]),
      timeoutMs: 60_000,
    });
    if (written.code !== 0)
      throw new Error(
        `a ${Buffer.byteLength(command)}-byte command could not be written to ${file} in the guest (cat exited ${written.code})`,
      );
    return this.execOnce(`sh ${file}; r=$?; rm -f ${file}; exit $r`, io);
  }

  private execOnce(command: string, io: ExecIo): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, ch) => {
        if (err) return reject(err);
        let timedOut = false;
        let aborted = false;
        let settled = false;
        const onAbort = () => {
          aborted = true;
          stop();
        };
        const finish = (r: ExecResult) => {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          io.abort?.removeEventListener("abort", onAbort);
          resolve(aborted ? { ...r, aborted } : r);
        };
        // The remote command is killed and the channel closed; a server that keeps the channel open until
        // its command exits (or a guest too stuck to answer) must not keep khil waiting.
        const stop = () => {
          ch.signal("KILL");
          ch.close();
          setTimeout(() => finish({ code: null, signal: "KILL", timedOut }), 2000).unref();
        };
        const timer = io.timeoutMs
          ? setTimeout(() => {
              timedOut = true;
              stop();
            }, io.timeoutMs)
          : undefined;
        if (io.abort?.aborted) onAbort();
        else io.abort?.addEventListener("abort", onAbort);
        if (io.stdout) ch.on("data", (d: Buffer) => io.stdout?.write(d));
        else ch.resume();
        if (io.stderr) ch.stderr.on("data", (d: Buffer) => io.stderr?.write(d));
        else ch.stderr.resume();
        if (io.stdin) io.stdin.pipe(ch);
        let code: number | null = null;
        let signal: string | undefined;
        ch.on("exit", (c: number | null, s?: string) => {
          code = c;
          signal = s;
        });
        ch.on("close", () => finish(signal ? { code, signal, timedOut } : { code, timedOut }));
      });
    });
  }

  /** Runs a command and collects its output. */
  async capture(
    command: string,
    timeoutMs = 30_000,
    abort?: AbortSignal,
  ): Promise<{ code: number | null; out: string; err: string }> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const collect = (into: Buffer[]) =>
      ({ write: (d: Buffer) => into.push(Buffer.from(d)) }) as unknown as Writable;
    const r = await this.exec(command, { stdout: collect(out), stderr: collect(err), timeoutMs, abort });
    return { code: r.code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
  }

  /** Streams `files` (relative to `cwd` on the host) into `remoteDir` as a gzipped tar. */
  async push(cwd: string, files: string[], remoteDir: string, timeoutMs: number): Promise<void> {
    const stream = tarCreate({ gzip: true, cwd, portable: true }, files) as unknown as Readable;
    const err: Buffer[] = [];
    const r = await this.exec(
      shellQuote(["sh", "-c", `mkdir -p "$1" && tar -xzf - -C "$1"`, "sh", remoteDir]),
      {
        stdin: stream,
        stderr: { write: (d: Buffer) => err.push(Buffer.from(d)) } as unknown as Writable,
        timeoutMs,
      },
    );
    if (r.timedOut) throw new Error(`push timed out after ${Math.round(timeoutMs / 1000)} s`);
    if (r.code !== 0)
      throw new Error(`tar in the guest exited ${r.code}: ${Buffer.concat(err).toString().trim()}`);
  }

  /** An interactive shell on the user's terminal. */
  shell(): Promise<number> {
    return new Promise((resolve, reject) => {
      const { stdin, stdout } = process;
      this.client.shell(
        { term: process.env.TERM ?? "xterm", rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 },
        (err, ch) => {
          if (err) return reject(err);
          if (stdin.isTTY) stdin.setRawMode(true);
          stdin.pipe(ch);
          ch.pipe(stdout);
          ch.stderr.pipe(process.stderr);
          const resize = () => ch.setWindow(stdout.rows ?? 24, stdout.columns ?? 80, 0, 0);
          stdout.on("resize", resize);
          let code = 0;
          ch.on("exit", (c: number | null) => {
            code = c ?? 0;
          });
          ch.on("close", () => {
            stdout.off("resize", resize);
            stdin.unpipe(ch);
            if (stdin.isTTY) stdin.setRawMode(false);
            stdin.pause();
            resolve(code);
          });
        },
      );
    });
  }

  close(): void {
    this.client.end();
  }
}
