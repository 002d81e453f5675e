import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ssh2 from "ssh2";
import { KhilError } from "../common/errors.ts";
import { cacheDir } from "../host/paths.ts";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
  path: string;
}

/**
 * One ed25519 key pair per cache directory, generated on first use; the private key is mode 0600. Two first
 * runs at once each write a whole pair into a directory of their own and move it into place in one rename:
 * one wins, the other takes the winner's, and no run ever sees one run's public key beside another's private.
 */
export function guestKey(): KeyPair {
  const dir = join(cacheDir(), "ssh");
  const path = join(dir, "id_ed25519");
  if (!existsSync(path)) {
    mkdirSync(cacheDir(), { recursive: true });
    const tmp = join(cacheDir(), `ssh.new-${process.pid}-${randomUUID()}`);
    mkdirSync(tmp, { mode: 0o700 });
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "khil-guest" });
    writeFileSync(join(tmp, "id_ed25519.pub"), `${pair.public}\n`);
    writeFileSync(join(tmp, "id_ed25519"), pair.private, { mode: 0o600 });
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true });
    }
    if (!existsSync(path))
      throw new KhilError(`${dir} holds no id_ed25519: remove that directory and khil makes a new key`);
  }
  chmodSync(path, 0o600);
  return {
    privateKey: readFileSync(path, "utf8"),
    publicKey: readFileSync(`${path}.pub`, "utf8").trim(),
    path,
  };
}
