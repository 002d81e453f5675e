import { execa, type ResultPromise } from "execa";
import type { Arch } from "../arch/arch.ts";
import { deathSignalPrefix, track } from "../host/children.ts";
import type { HostFacts } from "./host-facts.ts";

export type Accel = "kvm" | "tcg";

export interface QemuPlan {
  kernel: string;
  initrd?: string;
  accel: Accel;
  /** Host port forwarded to the guest's SSH port, bound to 127.0.0.1 only. */
  sshPort?: number;
  memoryMiB: number;
  cpus: number;
  cmdline: string[];
  /** Under TCG, all vCPUs on one host thread (`thread=single`): the suite's tcgSingleThread. */
  tcgSingleThread?: boolean;
  /** The unix socket QEMU's machine protocol listens on (snapshot save and resume). */
  qmp?: string;
  /**
   * The guest's RAM in a file rather than anonymous memory: `shared`, a file of the running guest's own that a
   * snapshot copies; not shared, a snapshot's RAM mapped copy-on-write, so a restore reads only the pages the
   * guest touches and several restores of one snapshot share it. The guest sees the same RAM either way.
   */
  ram?: { path: string; shared: boolean };
  /** QEMU waits for its state over QMP (`migrate-incoming`) instead of booting: a snapshot's restore. */
  incoming?: boolean;
}

/** A value in a QEMU option list, where a comma is written twice. */
function optionValue(v: string): string {
  return v.replace(/,/g, ",,");
}

/**
 * The kernel command line every khil guest gets. loglevel=7: a WARNING is printed at KERN_WARNING, which a
 * `quiet` console hides. panic=-1 with QEMU's -no-reboot turns a panic into QEMU exiting at once. An arch
 * parameter naming a host fact this host does not have is left out: the guest kernel then finds it itself.
 */
export function kernelCmdline(arch: Arch, host: HostFacts, extra: readonly string[] = []): string[] {
  const archParams = arch.cmdline.flatMap((p) => {
    const named = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as keyof HostFacts);
    if (named.some((n) => host[n] === undefined)) return [];
    return [p.replace(/\{(\w+)\}/g, (_, n: keyof HostFacts) => String(host[n]))];
  });
  return [`console=${arch.qemu.console}`, "loglevel=7", "panic=-1", "oops=panic", ...archParams, ...extra];
}

export function qemuArgs(arch: Arch, p: QemuPlan): string[] {
  const q = arch.qemu;
  const args = [
    "-nodefaults",
    "-no-reboot",
    "-display",
    "none",
    "-machine",
    q.machine,
    "-accel",
    p.accel === "tcg" && p.tcgSingleThread ? "tcg,thread=single" : p.accel,
    "-cpu",
    q.cpu[p.accel],
    "-m",
    String(p.memoryMiB),
    "-smp",
    String(p.cpus),
    "-serial",
    "stdio",
    "-kernel",
    p.kernel,
    "-append",
    p.cmdline.join(" "),
  ];
  if (p.initrd) args.push("-initrd", p.initrd);
  if (p.sshPort !== undefined) {
    args.push(
      "-netdev",
      `user,id=net0,hostfwd=tcp:127.0.0.1:${p.sshPort}-:22`,
      "-device",
      `${q.nic},netdev=net0`,
    );
  }
  if (p.qmp) args.push("-qmp", `unix:${optionValue(p.qmp)},server=on,wait=off`);
  if (p.ram) {
    const backend = `memory-backend-file,id=khil-ram,size=${p.memoryMiB}M,mem-path=${optionValue(p.ram.path)}`;
    args.push(
      "-object",
      `${backend},share=${p.ram.shared ? "on" : "off"}`,
      "-machine",
      "memory-backend=khil-ram",
    );
  }
  if (p.incoming) args.push("-incoming", "defer");
  return [...args, ...q.args];
}

/**
 * Starts QEMU for `plan`, tracked (Ctrl-C, exit and the run's deadline stop it) and under a parent-death
 * signal, so that not even a khil killed with SIGKILL leaves a guest behind. Its serial console is stdout.
 */
export function startQemu(
  arch: Arch,
  plan: QemuPlan,
  console: "pipe" | "ignore" = "pipe",
  /** A descriptor QEMU gets as its fd 3 (a guest's RAM file: guest.ts). */
  fd3?: number,
): ResultPromise {
  const [cmd, ...rest] = [...deathSignalPrefix(), arch.qemu.binary, ...qemuArgs(arch, plan)];
  // execa's types take descriptor numbers 0-2 only; at run time it hands any open descriptor on, as Node does.
  const extra = (fd3 === undefined ? [] : [fd3]) as unknown as "ignore"[];
  const p = execa(cmd ?? arch.qemu.binary, rest, {
    stdio: ["ignore", console, "pipe", ...extra],
    reject: false,
    buffer: { stdout: false, stderr: true },
  });
  track(p);
  return p;
}
