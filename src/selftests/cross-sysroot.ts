import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Arch } from "../arch/arch.ts";
import { crossPrefix } from "../arch/toolchain.ts";
import { KhilError } from "../common/errors.ts";
import { Sysroot } from "../host/debian.ts";
import { withLock } from "../host/lock.ts";
import { projectRoot } from "../host/paths.ts";
import { findOnPath } from "../host/tools.ts";

/** The libraries a cross-built test_progs is linked against: harness/sysroot-packages.txt. */
export function sysrootPackages(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0] ?? l);
}

export interface CrossSysroot {
  /** Put first on make's PATH: `<triplet>-gcc` there is the cross compiler with `--sysroot` given. */
  binDir: string;
  /** How clang links for the guest: the sysroot's libraries with the cross gcc's crt files and libgcc. */
  clangFlags: string[];
  /** The unpacked packages and their versions: what a build linked against them depends on. */
  stamp: string;
  /**
   * The selftests' bpftool built for the guest (make target, relative to the selftests directory `out`),
   * and a wrapper that runs it under QEMU's user-mode emulator: for a guest of another byte order.
   */
  guestBpftool(out: string): Promise<{ target: string; wrapper: string }>;
}

/**
 * The guest architecture's libraries for a cross build, in khil's sysroot of that architecture (the guest
 * image takes the same files, so the guest runs what test_progs was linked with). The compiler keeps its
 * name (`CROSS_COMPILE` and the kernel's recorded `CC` unchanged, so bpf_testmod's kbuild sees the compiler
 * the kernel was configured with) and gets the sysroot from a wrapper of the same name earlier on PATH.
 * Undefined for a native build, which uses the host's own libraries.
 */
export async function crossSysroot(arch: Arch): Promise<CrossSysroot | undefined> {
  const prefix = crossPrefix(arch);
  if (!prefix) return undefined;
  const sys = new Sysroot(arch.debianArch);
  const pkgs = sysrootPackages(readFileSync(join(projectRoot, "harness", "sysroot-packages.txt"), "utf8"));
  return withLock(sys.dir, "preparing the cross sysroot", async () => {
    for (const p of pkgs) await sys.unpack(p);
    const binDir = join(sys.dir, "bin");
    mkdirSync(binDir, { recursive: true });
    const gcc = join(binDir, `${prefix}gcc`);
    // The real compiler, found before the wrapper is on PATH (the build has required it).
    const real = findOnPath(`${prefix}gcc`) ?? `/usr/bin/${prefix}gcc`;
    writeFileSync(gcc, `#!/bin/sh\nexec ${real} --sysroot=${sys.root} "$@"\n`);
    chmodSync(gcc, 0o755);
    // CLANG compiles the BPF programs with -Werror too, where the link-only --gcc-toolchain goes unused.
    const clangFlags = [
      `--sysroot=${sys.root}`,
      `--gcc-toolchain=${dirname(dirname(real))}`,
      "-Wno-unused-command-line-argument",
    ];
    const guestBpftool = async (out: string) => {
      if (!arch.qemuUser)
        throw new KhilError(
          `harness/arch/${arch.name}.yaml: a ${arch.endian}-endian guest needs qemuUser (its qemu-user emulator, e.g. qemu-${arch.triplet.split("-")[0]}) to link its BPF objects`,
        );
      // The Makefile's CROSS_BPFTOOL: $(SCRATCH_DIR)/sbin/bpftool, SCRATCH_DIR being $(OUTPUT)/tools.
      const target = "tools/sbin/bpftool";
      const wrapper = join(binDir, "bpftool-guest");
      writeFileSync(wrapper, `#!/bin/sh\nexec ${arch.qemuUser} -L ${sys.root} ${join(out, target)} "$@"\n`);
      chmodSync(wrapper, 0o755);
      return { target, wrapper };
    };
    return {
      binDir,
      clangFlags,
      stamp: pkgs.map((p) => `${p}=${sys.version(p)}`).join(" "),
      guestBpftool,
    };
  });
}
