import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { cacheDir } from "./paths.ts";

const BOOT_ID = "/proc/sys/kernel/random/boot_id";

/**
 * A fact about the host that holds until it reboots (whether KVM works, the TSC's rate): computed once per
 * host boot and kept in the cache under `name`, written atomically since runs may start together.
 */
export async function perHostBoot<T>(
  name: string,
  compute: () => Promise<T>,
): Promise<{ value: T; cached: boolean }> {
  const bootId = existsSync(BOOT_ID) ? readFileSync(BOOT_ID, "utf8").trim() : "";
  const file = join(cacheDir(), "host", `${name}.json`);
  if (existsSync(file)) {
    const c = JSON.parse(readFileSync(file, "utf8")) as { bootId: string; value: T };
    if (c.bootId === bootId) return { value: c.value, cached: true };
  }
  const value = await compute();
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ bootId, value }));
  renameSync(tmp, file);
  return { value, cached: false };
}
