import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { hostDebianArch } from "./arch.ts";
import { cacheDir, projectRoot } from "./paths.ts";

/**
 * The host's TSC rate in kHz, or undefined where it cannot stand for a guest's: not an x86_64 host, or a
 * TSC whose rate changes with the CPU's (no constant_tsc). Measured once per host boot, like the KVM probe.
 */
export async function hostTscKhz(): Promise<number | undefined> {
  if (hostDebianArch !== "amd64") return undefined;
  if (!/\bconstant_tsc\b/.test(readFileSync("/proc/cpuinfo", "utf8"))) return undefined;
  const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  const dir = join(cacheDir(), "host");
  const cacheFile = join(dir, "tsc.json");
  if (existsSync(cacheFile)) {
    const c = JSON.parse(readFileSync(cacheFile, "utf8")) as { bootId: string; khz: number };
    if (c.bootId === bootId) return c.khz;
  }
  mkdirSync(dir, { recursive: true });
  const tool = join(dir, "tsc-khz");
  if (!existsSync(tool)) {
    const tmp = `${tool}.${process.pid}`;
    const r = await execa("gcc", ["-O2", "-o", tmp, join(projectRoot, "harness", "tsc-khz.c")], {
      reject: false,
    });
    if (r.exitCode !== 0) return undefined;
    renameSync(tmp, tool);
  }
  const khz = Number((await execa(tool)).stdout.trim());
  if (!Number.isFinite(khz) || khz <= 0) return undefined;
  const tmp = `${cacheFile}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ bootId, khz }));
  renameSync(tmp, cacheFile);
  return khz;
}
