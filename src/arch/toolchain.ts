import { arch as nodeArch } from "node:os";
import type { Tool } from "../host/tools.ts";
import type { Arch } from "./arch.ts";

const NODE_TO_DEBIAN: Record<string, string> = { x64: "amd64", arm64: "arm64" };
export const hostDebianArch = NODE_TO_DEBIAN[nodeArch()] ?? nodeArch();

/** The compiler prefix for make's CROSS_COMPILE: empty when the host runs the guest's architecture. */
export function crossPrefix(a: Arch): string {
  return a.debianArch === hostDebianArch ? "" : `${a.triplet}-`;
}

/** `ARCH=` and `CROSS_COMPILE=` for every make khil runs for this architecture (kernel and selftests). */
export function archMakeVars(a: Arch): string[] {
  return [`ARCH=${a.kernelArch}`, `CROSS_COMPILE=${crossPrefix(a)}`];
}

/** The C compiler for the guest's architecture, with the package a missing one comes from. */
export function compilerTool(a: Arch): Tool {
  const prefix = crossPrefix(a);
  return prefix ? { command: `${prefix}gcc`, pkg: a.crossCompilerPackage } : "gcc";
}

export function qemuTool(a: Arch): Tool {
  return { command: a.qemu.binary, pkg: a.qemu.package };
}
