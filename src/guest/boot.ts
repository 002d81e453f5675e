import type { Arch } from "../arch/arch.ts";
import { qemuTool } from "../arch/toolchain.ts";
import { log } from "../common/log.ts";
import { requireTools } from "../host/tools.ts";
import { buildKernel, type KernelBuild } from "../kernel/kbuild.ts";
import type { KernelTree } from "../kernel/tree.ts";
import { type AccelChoice, chooseAccel } from "./accel.ts";
import { Guest } from "./guest.ts";
import { buildImage, type GuestImage } from "./image.ts";
import type { Accel } from "./qemu.ts";
import { guestKey } from "./ssh-key.ts";

export interface GuestRequest {
  arch: Arch;
  tree: KernelTree;
  fragments: readonly string[];
  jobs?: number;
  runDir: string;
  accel?: Accel;
  buildTimeoutMs: number;
  bootTimeoutMs: number;
  cpus?: number;
  memoryMiB?: number;
  /** Kernel command-line parameters after khil's own. */
  append: string[];
}

export async function buildFor(r: GuestRequest): Promise<KernelBuild> {
  return buildKernel({
    tree: r.tree,
    arch: r.arch,
    fragments: r.fragments,
    jobs: r.jobs,
    runDir: r.runDir,
    timeoutMs: r.buildTimeoutMs,
  });
}

/** Image, accelerator and boot for a kernel already built: the stages after `build`. */
export async function bootGuest(
  r: GuestRequest,
  build: KernelBuild,
  hostPrograms: string[] = [],
  onConsoleLine?: (line: string) => void,
): Promise<{ guest: Guest; image: GuestImage; accel: AccelChoice }> {
  await requireTools([qemuTool(r.arch), "readelf", "cpio", "dpkg-deb", "apt-get"]);
  const key = guestKey();
  const image = await buildImage(r.arch, key.publicKey, hostPrograms);
  const accel = await chooseAccel(r.arch, build.bootImage, r.accel);
  log(`booting ${r.arch.name} ${build.release} with ${accel.accel} (${accel.reason})`);
  const guest = await Guest.boot({
    arch: r.arch,
    kernel: build.bootImage,
    initrd: image.path,
    accel: accel.accel,
    privateKey: key.privateKey,
    runDir: r.runDir,
    bootTimeoutMs: r.bootTimeoutMs,
    cmdline: r.append,
    cpus: r.cpus,
    memoryMiB: r.memoryMiB,
    onConsoleLine,
  });
  log(`ready in ${guest.bootSeconds.toFixed(1)} s (${accel.accel})`);
  return { guest, image, accel };
}
