import { rmSync } from "node:fs";
import type { Arch } from "../arch/arch.ts";
import { qemuTool } from "../arch/toolchain.ts";
import { log } from "../common/log.ts";
import { requireTools } from "../host/tools.ts";
import { buildKernel, type KernelBuild } from "../kernel/kbuild.ts";
import type { KernelTree } from "../kernel/tree.ts";
import { type AccelChoice, chooseAccel } from "./accel.ts";
import { type BootOptions, Guest, guestPlan } from "./guest.ts";
import { buildImage, type GuestImage, type ImageAddition } from "./image.ts";
import { type Accel, qemuArgs } from "./qemu.ts";
import {
  commitSnapshot,
  fileHash,
  findSnapshot,
  type PushedFiles,
  pushedIdentity,
  qemuVersion,
  SNAPSHOT_FORMAT,
  type SnapshotIdentity,
  snapshotTarget,
  targetPaths,
} from "./snapshot.ts";
import { guestKey } from "./ssh-key.ts";

export interface GuestRequest {
  arch: Arch;
  tree: KernelTree;
  fragments: readonly string[];
  /** Fragments whose options may fail to land (BuildOptions.advisory): the tree's selftests config. */
  advisory?: readonly string[];
  jobs?: number;
  runDir: string;
  accel?: Accel;
  buildTimeoutMs: number;
  bootTimeoutMs: number;
  cpus?: number;
  memoryMiB?: number;
  /** Kernel command-line parameters after khil's own. */
  append: string[];
  /** Under TCG, every vCPU on one host thread (the suite's tcgSingleThread). */
  tcgSingleThread?: boolean;
  /** What the suite adds to the guest image (its `image:`). */
  image?: ImageAddition;
}

export async function buildFor(r: GuestRequest): Promise<KernelBuild> {
  return buildKernel({
    tree: r.tree,
    arch: r.arch,
    fragments: r.fragments,
    advisory: r.advisory,
    jobs: r.jobs,
    runDir: r.runDir,
    timeoutMs: r.buildTimeoutMs,
  });
}

/** How a guest came to be ready: booted, or restored from a snapshot (and from which). */
export interface Readiness {
  restored?: { snapshot: string; savedAt: string; seconds: number };
  /** Why a guest that could have been restored was booted instead. */
  coldBecause?: string;
}

/**
 * Snapshot use for one guest: `restore` a saved one of the same identity if there is one (its files
 * already pushed), else boot; `save` one once ready. `pushes` are part of what makes the guest that guest.
 */
export interface SnapshotUse {
  restore: boolean;
  pushes: readonly PushedFiles[];
}

/** What makes this guest this guest (snapshot.ts): each part by name, for saying which one differs. */
async function identityOf(o: BootOptions, pushes: readonly PushedFiles[]): Promise<SnapshotIdentity> {
  const plan = await guestPlan(o);
  const q = o.arch.qemu;
  return {
    format: SNAPSHOT_FORMAT,
    kernel: fileHash(o.kernel),
    image: fileHash(o.initrd),
    qemu: await qemuVersion(q.binary),
    accel: o.accel,
    machine: qemuArgs(o.arch, { ...plan, cmdline: [], kernel: "", initrd: undefined }).join(" "),
    "command line": plan.cmdline.join(" "),
    pushed: pushedIdentity(pushes),
  };
}

/** A guest restored from the snapshot of `identity`, or why it could not be (then nothing is left running). */
export type Restored = { guest: Guest; restored: NonNullable<Readiness["restored"]> } | { reason: string };

async function restoreGuest(o: BootOptions, identity: SnapshotIdentity, release: string): Promise<Restored> {
  const found = findSnapshot(o.arch.name, identity);
  if ("reason" in found) return { reason: found.reason };
  let guest: Guest | undefined;
  try {
    guest = await Guest.boot({ ...o, restore: found.files, bootTimeoutMs: 30_000 });
    await guest.syncRealtime();
    log(
      `restored ${o.arch.name} ${release} from snapshot ${found.meta.key} (saved ${found.meta.savedAt}) in ${guest.bootSeconds.toFixed(2)} s`,
    );
    const restored = { snapshot: found.meta.key, savedAt: found.meta.savedAt, seconds: guest.bootSeconds };
    return { guest, restored };
  } catch (e) {
    await guest?.stop();
    return { reason: `restoring snapshot ${found.meta.key} failed: ${(e as Error).message.split("\n")[0]}` };
  }
}

/** Image, accelerator and boot (or restore) for a kernel already built: the stages after `build`. */
export async function bootGuest(
  r: GuestRequest,
  build: KernelBuild,
  hostPrograms: string[] = [],
  onConsoleLine?: (line: string) => void,
  snapshot?: SnapshotUse,
): Promise<{
  guest: Guest;
  image: GuestImage;
  accel: AccelChoice;
  readiness: Readiness;
  identity?: SnapshotIdentity;
  restoreAgain?: () => Promise<Restored>;
}> {
  await requireTools([qemuTool(r.arch), "cpio", "dpkg-deb", "apt-get"]);
  const key = guestKey();
  const image = await buildImage(r.arch, key.publicKey, hostPrograms, [], r.image);
  const accel = await chooseAccel(r.arch, build.bootImage, r.accel);
  const o: BootOptions = {
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
    ...(r.tcgSingleThread ? { tcgSingleThread: true } : {}),
    onConsoleLine,
  };
  const identity = snapshot && (await identityOf(o, snapshot.pushes));
  // A fresh copy of the saved guest, for a test run again where its first attempt cannot reach (rerun.ts).
  const restoreAgain = identity && (() => restoreGuest(o, identity, build.release));
  const readiness: Readiness = {};
  if (snapshot?.restore && identity) {
    const restored = await restoreGuest(o, identity, build.release);
    if ("guest" in restored) {
      readiness.restored = restored.restored;
      return { guest: restored.guest, image, accel, readiness, identity, restoreAgain };
    }
    readiness.coldBecause = restored.reason;
    log(`booting cold: ${readiness.coldBecause}`);
  }
  log(`booting ${r.arch.name} ${build.release} with ${accel.accel} (${accel.reason})`);
  const guest = await Guest.boot({ ...o, savable: Boolean(snapshot) });
  log(`ready in ${guest.bootSeconds.toFixed(1)} s (${accel.accel})`);
  return { guest, image, accel, readiness, identity, restoreAgain };
}

/**
 * Saves the ready guest as a snapshot of `identity`; the guest goes on. A failure (a full disk, QEMU
 * refusing) costs only the snapshot: it is said, and the run continues in the same guest.
 */
export async function saveSnapshot(guest: Guest, identity: SnapshotIdentity): Promise<string | undefined> {
  const t = snapshotTarget(identity);
  const started = Date.now();
  try {
    await guest.saveState(targetPaths(t));
    const meta = commitSnapshot(t, {
      arch: guest.arch.name,
      identity,
      savedAt: new Date().toISOString(),
      saveSeconds: (Date.now() - started) / 1000,
    });
    log(
      `saved snapshot ${meta.key} (${(meta.bytes / 1024 ** 2).toFixed(0)} MiB) in ${meta.saveSeconds.toFixed(1)} s`,
    );
    return meta.key;
  } catch (e) {
    for (const f of Object.values(targetPaths(t))) rmSync(f, { force: true });
    log(`snapshot not saved: ${(e as Error).message}`);
    return undefined;
  }
}
