import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { KhilError } from "../common/errors.ts";
import { parseYamlFile } from "../common/yaml.ts";
import { projectRoot } from "../host/paths.ts";

const ArchSchema = z.strictObject({
  name: z.string(),
  kernelArch: z.string(),
  srcArch: z.string(),
  debianArch: z.string(),
  triplet: z.string(),
  crossCompilerPackage: z.string(),
  bootImage: z.string(),
  configFragment: z.string(),
  fragmentsSince: z.array(z.strictObject({ since: z.string(), fragments: z.array(z.string()) })).default([]),
  clangTarget: z.string(),
  /** The guest's byte order. */
  endian: z.enum(["little", "big"]).default("little"),
  /**
   * QEMU's user-mode emulator for this architecture (from qemu-user): where the guest's byte order is not
   * the host's, the selftests build links its BPF objects with a bpftool built for the guest and run under
   * it, since a tree's bpftool links only objects of the byte order it runs in (before 6.13).
   */
  qemuUser: z.string().optional(),
  /**
   * `uname -m` in the guest, which names the BPF selftests' per-arch files (DENYLIST.<m>, config.<m>); left
   * out, the triplet's first part (aarch64 of aarch64-linux-gnu).
   */
  uname: z.string().optional(),
  /** Kernel parameters this architecture's guests need, after khil's own and before the user's. */
  cmdline: z.array(z.string()).default([]),
  /** What `khil bench` holds boot-to-SSH of khil's minimal kernel to, under TCG. */
  bootToSshGoalSeconds: z.number().positive(),
  qemu: z.strictObject({
    binary: z.string(),
    package: z.string(),
    machine: z.string(),
    cpu: z.strictObject({ kvm: z.string(), tcg: z.string() }),
    console: z.string(),
    /** The NIC's -device, with its properties: khil adds `netdev=`. */
    nic: z.string(),
    args: z.array(z.string()),
  }),
  /**
   * The machine as a LAVA lab's QEMU device type knows it: the device type, and the job `context` that
   * makes its qemu.jinja2 start the same machine as `qemu` above (arch, CPU, machine, extra options).
   */
  lava: z.strictObject({
    deviceType: z.string(),
    context: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
  }),
});
export type Arch = z.infer<typeof ArchSchema>;

const archDir = join(projectRoot, "harness", "arch");

export function archNames(): string[] {
  return readdirSync(archDir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.slice(0, -".yaml".length))
    .sort();
}

export function loadArch(name: string): Arch {
  const names = archNames();
  if (!names.includes(name)) throw new KhilError(`unknown arch '${name}': valid are ${names.join(", ")}`);
  const file = join(archDir, `${name}.yaml`);
  return parseYamlFile(file, readFileSync(file, "utf8"), ArchSchema);
}

/** `uname -m` of the arch's guests. */
export function unameMachine(a: Pick<Arch, "uname" | "triplet">): string {
  return a.uname ?? a.triplet.split("-")[0] ?? a.triplet;
}

/** `all` expands to every described architecture. */
export function resolveArchs(spec: string): Arch[] {
  const list = spec === "all" ? archNames() : spec.split(",").map((s) => s.trim());
  return list.map(loadArch);
}
