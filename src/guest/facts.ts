/** What khil reads from the guest itself about the machine it tested. */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { KernelBuild } from "../kernel/kbuild.ts";
import type { AccelChoice } from "./accel.ts";
import type { Guest } from "./guest.ts";

export const FACTS_SCRIPT = [
  'echo "release=$(uname -r)"',
  'echo "machine=$(uname -m)"',
  'echo "jit=$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo missing)"',
  'echo "harden=$(cat /proc/sys/net/core/bpf_jit_harden 2>/dev/null || echo missing)"',
  'echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"',
  'echo "cpus=$(grep -c ^processor /proc/cpuinfo)"',
  'echo "online=$(cat /sys/devices/system/cpu/online)"',
  'echo "config=$(zcat /proc/config.gz 2>/dev/null | sha256sum | cut -c1-64)"',
  "grep -m1 '\\.resolution:' /proc/timer_list 2>/dev/null",
].join("; ");

export interface RawFacts {
  release: string;
  machine: string;
  jit: string;
  harden: string;
  clocksource: string;
  cpus: number;
  configSha256: string;
  hrtimerResolutionNs: number | null;
}

/** Parses FACTS_SCRIPT's output. CPUs are counted from the online mask, as get_nprocs() does. */
export function parseFacts(out: string): RawFacts {
  const kv = new Map<string, string>();
  for (const line of out.split("\n")) {
    const m = /^(\w+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) kv.set(m[1], m[2].trim());
  }
  const res = /\.resolution:\s*(\d+)\s*nsecs/.exec(out);
  return {
    release: kv.get("release") ?? "unknown",
    machine: kv.get("machine") ?? "unknown",
    jit: kv.get("jit") ?? "missing",
    harden: kv.get("harden") ?? "missing",
    clocksource: kv.get("clocksource") ?? "unknown",
    cpus: countCpus(kv.get("online") ?? "") || Number(kv.get("cpus") ?? 0),
    configSha256: kv.get("config") ?? "",
    hrtimerResolutionNs: res?.[1] ? Number(res[1]) : null,
  };
}

/** "0-1,3" -> 3 */
export function countCpus(mask: string): number {
  let n = 0;
  for (const part of mask.split(",").filter(Boolean)) {
    const [a, b] = part.split("-").map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    n += b === undefined || Number.isNaN(b) ? 1 : b - a + 1;
  }
  return n;
}

/** What results record about the guest a run tested, read from the guest itself. */
export interface GuestFacts {
  kernelRelease: string;
  configHash: string;
  arch: string;
  machine: string;
  accel: string;
  accelReason: string;
  bpfJitEnable: string;
  /** net.core.bpf_jit_harden as the guest reads it: 2 blinds constants in every program. */
  bpfJitHarden?: string;
  clocksource: string;
  hrtimerResolutionNs: number | null;
  cpus: number;
  bootSeconds: number;
  /** The guest was restored from this snapshot (guest/snapshot.ts) rather than booted: bootSeconds is that. */
  restored?: { snapshot: string; savedAt: string; seconds: number };
  /** Why a guest that could have been restored was booted instead. */
  coldBecause?: string;
}

/**
 * The measure a guest's time to SSH is recorded as: a restore is not a boot, so it is a measure of its own and
 * the boot's history (and its trend in the report) stays the boot's.
 */
export function readyMeasure(g: Pick<GuestFacts, "restored">): "boot_to_ssh" | "restore_to_ssh" {
  return g.restored ? "restore_to_ssh" : "boot_to_ssh";
}

/** The guest's facts, and where they show it is not the kernel khil built. */
export async function readGuestFacts(
  guest: Guest,
  build: KernelBuild,
  accel: AccelChoice,
): Promise<{ facts: GuestFacts; problems: string[] }> {
  const r = await guest.ssh.capture(FACTS_SCRIPT);
  return guestFacts(parseFacts(r.out), build, {
    arch: guest.arch.name,
    ...accel,
    bootSeconds: guest.bootSeconds,
  });
}

/** FACTS_SCRIPT's answer held against the kernel khil built, however the script reached the guest. */
export function guestFacts(
  raw: RawFacts,
  build: KernelBuild,
  where: { arch: string; accel: string; reason: string; bootSeconds: number },
): { facts: GuestFacts; problems: string[] } {
  const problems: string[] = [];
  const ourSha = createHash("sha256").update(readFileSync(build.config)).digest("hex");
  if (raw.configSha256 && raw.configSha256 !== ourSha)
    problems.push("the guest's /proc/config.gz is not the config khil built: it booted another kernel");
  if (raw.release !== build.release)
    problems.push(`the guest runs ${raw.release}, khil built ${build.release}`);
  return {
    facts: {
      kernelRelease: raw.release,
      configHash: raw.configSha256 === ourSha ? build.configHash : `guest:${raw.configSha256.slice(0, 12)}`,
      arch: where.arch,
      machine: raw.machine,
      accel: where.accel,
      accelReason: where.reason,
      bpfJitEnable: raw.jit,
      bpfJitHarden: raw.harden,
      clocksource: raw.clocksource,
      hrtimerResolutionNs: raw.hrtimerResolutionNs,
      cpus: raw.cpus,
      bootSeconds: where.bootSeconds,
    },
    problems,
  };
}

/** The JIT settings a run asked the guest's kernel for, as sysctls on its command line. */
export interface JitAsked {
  enable: string;
  harden?: string;
}

/** `sysctl.net.core.bpf_jit_enable=0` and `sysctl.net.core.bpf_jit_harden=2` among the parameters; the JIT is on unless asked otherwise. */
export function jitAsked(append: readonly string[]): JitAsked {
  const value = (name: string) =>
    append
      .map((p) => new RegExp(`^sysctl\\.net[./]core[./]${name}=(\\d+)$`).exec(p)?.[1])
      .filter((v) => v !== undefined)
      .pop();
  const harden = value("bpf_jit_harden");
  return { enable: value("bpf_jit_enable") ?? "1", ...(harden ? { harden } : {}) };
}

/** The JIT mode the guest really ran with, read back from it, for a run's header. */
export function jitMode(f: Pick<GuestFacts, "bpfJitEnable" | "bpfJitHarden">): string {
  if (f.bpfJitEnable === "0") return "JIT OFF (bpf_jit_enable=0)";
  if (f.bpfJitEnable !== "1" && f.bpfJitEnable !== "2") return `JIT ${f.bpfJitEnable}`;
  const harden =
    f.bpfJitHarden && f.bpfJitHarden !== "0" ? `, hardened (bpf_jit_harden=${f.bpfJitHarden})` : "";
  return `JIT on${harden}`;
}

/**
 * Where the machine, not the kernel under test, keeps the tests from testing what they claim: each a
 * harness fault that fails the run. The JIT is judged against what the run asked for: JIT off is what a
 * jit-off run exists to test, and a hardened run that did not get hardening tested nothing of it.
 */
export function harnessFaults(f: GuestFacts, minCpus: number, jit: JitAsked = { enable: "1" }): string[] {
  const out: string[] = [];
  if (f.cpus < minCpus)
    out.push(
      `the guest has ${f.cpus} CPU(s), the suite needs ${minCpus}: tests that need more skip (a harness fault)`,
    );
  if (f.hrtimerResolutionNs !== 1)
    out.push(
      `hrtimers are in low-resolution mode (resolution ${f.hrtimerResolutionNs ?? "unknown"} ns, clocksource ${f.clocksource}): the timer tests did not run on high-resolution hrtimers (a harness fault)`,
    );
  if (f.bpfJitEnable !== jit.enable)
    out.push(
      jit.enable === "1"
        ? `bpf_jit_enable is ${f.bpfJitEnable}: the tests did not run on the JIT`
        : `the run asked for bpf_jit_enable=${jit.enable}, the guest has ${f.bpfJitEnable} (a kernel with CONFIG_BPF_JIT_ALWAYS_ON keeps the JIT on)`,
    );
  if (jit.harden !== undefined && f.bpfJitHarden !== jit.harden)
    out.push(
      `the run asked for bpf_jit_harden=${jit.harden}, the guest has ${f.bpfJitHarden ?? "unknown"}: the tests did not run on the JIT mode asked for`,
    );
  return out;
}
