import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import ssh2 from "ssh2";
import { cacheDir } from "../host/paths.ts";

export interface KeyPair {
  privateKey: string;
  publicKey: string;
  path: string;
}

/** One ed25519 key pair per cache directory, generated on first use; the private key is mode 0600. */
export function guestKey(): KeyPair {
  const dir = join(cacheDir(), "ssh");
  const path = join(dir, "id_ed25519");
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "khil-guest" });
    writeFileSync(`${path}.pub.tmp`, `${pair.public}\n`);
    writeFileSync(`${path}.tmp`, pair.private, { mode: 0o600 });
    renameSync(`${path}.pub.tmp`, `${path}.pub`);
    renameSync(`${path}.tmp`, path);
  }
  chmodSync(path, 0o600);
  return {
    privateKey: readFileSync(path, "utf8"),
    publicKey: readFileSync(`${path}.pub`, "utf8").trim(),
    path,
  };
}
