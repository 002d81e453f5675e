import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, execaSync } from "execa";
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { startTime } from "../src/host/children.ts";
import { stopWaiting, withLock } from "../src/host/lock.ts";

const deadPid = () => execaSync("sh", ["-c", "echo $$"]).stdout.trim();

function staleLock(owner: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "khil-lock-")), "build");
  mkdirSync(`${path}.lock`);
  writeFileSync(join(`${path}.lock`, "owner"), owner);
  return path;
}

describe("build directory locks", () => {
  it("takes over a lock whose owner died, and records itself with its start time", async () => {
    const path = staleLock(`${deadPid()} 1`);
    const owner = await withLock(path, "test", async () => readFileSync(`${path}.lock/owner`, "utf8"));
    expect(owner).toBe(`${process.pid} ${startTime(process.pid)}`);
  });

  it("takes over a lock whose pid now belongs to another process (a reused pid), instead of waiting forever", async () => {
    const path = staleLock(`${process.ppid} 1`);
    expect(await withLock(path, "test", async () => "held")).toBe("held");
  });

  it("reads an older khil's lock (its pid alone) and takes it over when that pid is dead", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "khil-lock-")), "build");
    mkdirSync(`${path}.lock`);
    writeFileSync(join(`${path}.lock`, "pid"), deadPid());
    expect(await withLock(path, "test", async () => "held")).toBe("held");
  });

  it("never lets two waiters on one stale lock hold it at once", async () => {
    const path = staleLock(`${deadPid()} 1`);
    let holders = 0;
    let most = 0;
    const hold = () =>
      withLock(path, "test", async () => {
        most = Math.max(most, ++holders);
        await new Promise((r) => setTimeout(r, 50));
        holders--;
      });
    await Promise.all([hold(), hold(), hold(), hold()]);
    expect(most).toBe(1);
  });
});

describe("the guest SSH key", () => {
  it("is one pair whichever of several first runs writes it", async () => {
    const cache = mkdtempSync(join(tmpdir(), "khil-key-"));
    const script = `import { guestKey } from "${join(import.meta.dirname, "../src/guest/ssh-key.ts")}"; const k = guestKey(); console.log(k.publicKey);`;
    const runs = await Promise.all(
      [1, 2, 3, 4].map(() =>
        execa("npx", ["tsx", "-e", script], {
          env: { KHIL_CACHE: cache },
          cwd: join(import.meta.dirname, ".."),
        }),
      ),
    );
    const keys = new Set(runs.map((r) => r.stdout.trim()));
    expect(keys.size).toBe(1);
    expect(`${[...keys][0]}\n`).toBe(readFileSync(join(cache, "ssh", "id_ed25519.pub"), "utf8"));
    // and the private key beside it is that public key's
    const priv = ssh2.utils.parseKey(readFileSync(join(cache, "ssh", "id_ed25519"), "utf8"));
    const pub = ssh2.utils.parseKey(readFileSync(join(cache, "ssh", "id_ed25519.pub"), "utf8"));
    if (priv instanceof Error || pub instanceof Error) throw priv instanceof Error ? priv : pub;
    expect(priv.getPublicSSH().equals(pub.getPublicSSH())).toBe(true);
  }, 60_000);
});

describe("a wait for a lock held by a live process", () => {
  // last in this file: stopWaiting holds for the rest of the process, as the run's deadline does
  it("ends at the run's deadline, naming who holds the lock and what it does", async () => {
    const path = staleLock(`${process.ppid} ${startTime(process.ppid)}`);
    const waiting = withLock(path, "building the kernel", async () => "held");
    setTimeout(() => stopWaiting("timeout: whole run after 90 s"), 200);
    await expect(waiting).rejects.toThrow(
      new RegExp(
        `^timeout: whole run after 90 s \\(waiting for pid ${process.ppid} \\(.*\\) to finish building the kernel\\)$`,
      ),
    );
  }, 10_000);
});
