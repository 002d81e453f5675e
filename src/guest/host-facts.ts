import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { hostDebianArch } from "../arch/toolchain.ts";
import { perHostBoot } from "../host/boot-cache.ts";
import { cacheDir, projectRoot } from "../host/paths.ts";

/** Facts of the host that a guest's kernel parameters may name, as `{name}` in an arch file's `cmdline`. */
export interface HostFacts {
  tscKhz?: number;
}

/** The host facts `arch`'s kernel parameters name, each measured only when named. */
export async function hostFacts(arch: Arch): Promise<HostFacts> {
  const named = arch.cmdline.join(" ");
  return named.includes("{tscKhz}") ? { tscKhz: await hostTscKhz() } : {};
}

/**
 * The host's TSC rate in kHz, or undefined where it cannot stand for a guest's: not an x86_64 host, or a
 * TSC whose rate changes with the CPU's (no constant_tsc).
 */
async function hostTscKhz(): Promise<number | undefined> {
  if (hostDebianArch !== "amd64") return undefined;
  if (!/\bconstant_tsc\b/.test(readFileSync("/proc/cpuinfo", "utf8"))) return undefined;
  const { value } = await perHostBoot("tsc-khz", measureTscKhz);
  return value;
}

async function measureTscKhz(): Promise<number | undefined> {
  const dir = join(cacheDir(), "host");
  const tool = join(dir, "tsc-khz");
  if (!existsSync(tool)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${tool}.${process.pid}`;
    const r = await execa("gcc", ["-O2", "-o", tmp, join(projectRoot, "harness", "tsc-khz.c")], {
      reject: false,
    });
    if (r.exitCode !== 0) return undefined;
    renameSync(tmp, tool);
  }
  const khz = Number((await execa(tool)).stdout.trim());
  return Number.isFinite(khz) && khz > 0 ? khz : undefined;
}
