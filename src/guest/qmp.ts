/**
 * QEMU's machine protocol (QMP) over the unix socket each guest's QEMU listens on: one command at a time,
 * answers matched by id, events ignored. khil uses it to stop, save and resume a guest (snapshot.ts).
 */
import { connect, type Socket } from "node:net";
import { lineSplitter } from "../common/lines.ts";

interface Reply {
  id?: number;
  return?: unknown;
  error?: { class: string; desc: string };
  QMP?: unknown;
  event?: string;
}

export class Qmp {
  private next = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private closed: Error | undefined;

  private constructor(private readonly sock: Socket) {
    sock.on(
      "data",
      lineSplitter((line) => this.receive(line)),
    );
    const fail = (e: Error) => {
      this.closed = e;
      for (const w of this.waiting.values()) w({ error: { class: "closed", desc: e.message } });
      this.waiting.clear();
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("QMP socket closed")));
  }

  /** Connects, reads QEMU's greeting and leaves capabilities negotiation: commands may follow. */
  static async open(path: string, timeoutMs = 5000): Promise<Qmp> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once("error", reject);
        });
        const q = new Qmp(sock);
        await q.execute("qmp_capabilities");
        return q;
      } catch (e) {
        // QEMU creates the socket a moment after it starts.
        if (Date.now() > deadline) throw new Error(`QMP at ${path}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private receive(line: string): void {
    let r: Reply;
    try {
      r = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    if (r.id === undefined) return;
    this.waiting.get(r.id)?.(r);
    this.waiting.delete(r.id);
  }

  /** A command's return value; QEMU's error, or the socket closing, as an Error saying which command. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: ${this.closed.message}`));
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (r) =>
        r.error ? reject(new Error(`QMP ${command}: ${r.error.desc}`)) : resolve(r.return as T),
      );
      this.sock.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
