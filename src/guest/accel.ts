import { accessSync, constants } from "node:fs";
import type { Arch } from "../arch/arch.ts";
import { hostDebianArch } from "../arch/toolchain.ts";
import { perHostBoot } from "../host/boot-cache.ts";
import { type Accel, startQemu } from "./qemu.ts";

export interface AccelChoice {
  accel: Accel;
  reason: string;
}

const PROBE_DEADLINE_MS = 8000;

/**
 * KVM only where it really runs a guest: `/dev/kvm` can exist while guests hang (nested virtualisation that
 * does not work), so a tiny boot of the kernel itself must print its banner within a deadline. The answer is
 * kept for the host's current boot.
 */
export async function chooseAccel(arch: Arch, kernel: string, override?: Accel): Promise<AccelChoice> {
  if (override) return { accel: override, reason: "chosen with --accel" };
  if (arch.debianArch !== hostDebianArch)
    return { accel: "tcg", reason: `the host is ${hostDebianArch}, the guest ${arch.debianArch}` };
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", reason: "/dev/kvm is missing or not accessible" };
  }
  const { value, cached } = await perHostBoot(`kvm-probe-${arch.name}`, () => probe(arch, kernel));
  return cached ? { ...value, reason: `${value.reason} (probed earlier this host boot)` } : value;
}

async function probe(arch: Arch, kernel: string): Promise<AccelChoice> {
  const p = startQemu(arch, {
    kernel,
    accel: "kvm",
    memoryMiB: 256,
    cpus: 1,
    cmdline: [`console=${arch.qemu.console}`, "earlyprintk=serial", "panic=-1"],
  });
  const saw = await new Promise<boolean>((resolve) => {
    let text = "";
    const timer = setTimeout(() => resolve(false), PROBE_DEADLINE_MS);
    p.stdout?.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("Linux version")) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    p.then(() => {
      clearTimeout(timer);
      resolve(text.includes("Linux version"));
    });
  });
  p.kill("SIGKILL");
  await p;
  return saw
    ? { accel: "kvm", reason: "a KVM probe boot printed the kernel banner" }
    : {
        accel: "tcg",
        reason: `/dev/kvm opens but a KVM probe boot printed nothing in ${PROBE_DEADLINE_MS / 1000} s (nested KVM not working)`,
      };
}
