import { createServer, type Socket } from "node:net";
import ssh2 from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import { GuestSsh } from "../src/guest/ssh.ts";

// The unit here is the connection's error handling; a real guest's sshd is exercised by the boot tests.
const key = ssh2.utils.generateKeyPairSync("ed25519").private;

let close: (() => void) | undefined;
afterEach(() => close?.());

async function server(onSocket: (s: Socket) => void): Promise<number> {
  const srv = createServer((s) => {
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  close = () => srv.close();
  return (srv.address() as { port: number }).port;
}

describe("SSH connection to a guest that is not ready", () => {
  it("fails when the server closes right after its greeting, instead of waiting forever", async () => {
    const port = await server((s) => {
      s.write("SSH-2.0-dying\r\n");
      setTimeout(() => s.destroy(), 50);
    });
    await expect(GuestSsh.connect(port, key, 60_000)).rejects.toThrow(/closed before the SSH handshake/);
  });

  it("fails, without an unhandled error, when the connection drops before any greeting", async () => {
    const port = await server((s) => s.destroy());
    for (let i = 0; i < 3; i++)
      await expect(GuestSsh.connect(port, key, 60_000)).rejects.toThrow(/before handshake/);
  });

  it("gives up on a server that never answers at the connection's timeout", async () => {
    const port = await server(() => {});
    await expect(GuestSsh.connect(port, key, 1000)).rejects.toThrow(/Timed out/);
  });

  // QEMU's user-mode network does this when the guest's network is dead: it accepts the connection, then drops
  // it. ssh2 reports the timeout, then the lost connection; the second error once crashed khil.
  it("survives the connection dropping after it timed out", async () => {
    const port = await server((s) => setTimeout(() => s.destroy(), 1500));
    await expect(GuestSsh.connect(port, key, 1000)).rejects.toThrow(/Timed out/);
    await new Promise((r) => setTimeout(r, 1000));
  });
});
