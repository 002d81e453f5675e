import { execa } from "execa";
import { KhilError } from "./errors.ts";

/** Host commands khil runs, with the Debian package that provides each: a missing one is named with it. */
const PACKAGE_OF: Record<string, string> = {
  make: "make",
  gcc: "gcc",
  flex: "flex",
  bison: "bison",
  bc: "bc",
  pahole: "dwarves",
  ccache: "ccache",
  cpio: "cpio",
  gzip: "gzip",
  xz: "xz-utils",
  tar: "tar",
  readelf: "binutils",
  "dpkg-deb": "dpkg",
  "apt-get": "apt",
  "apt-cache": "apt",
  "qemu-system-x86_64": "qemu-system-x86",
  "qemu-system-aarch64": "qemu-system-arm",
  "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
  "x86_64-linux-gnu-gcc": "gcc-x86-64-linux-gnu",
  "clang-19": "clang-19",
  "llc-19": "llvm-19",
  "ld.lld-19": "lld-19",
  "pkg-config": "pkg-config",
  git: "git",
};

export function packageFor(command: string): string {
  return PACKAGE_OF[command] ?? command;
}

async function onPath(command: string): Promise<boolean> {
  const r = await execa("sh", ["-c", 'command -v "$1"', "sh", command], { reject: false });
  return r.exitCode === 0;
}

/** Fails with one line naming every missing command and the apt packages that provide them. */
export async function requireTools(commands: readonly string[]): Promise<void> {
  const missing: string[] = [];
  for (const c of new Set(commands)) if (!(await onPath(c))) missing.push(c);
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(packageFor))];
  throw new KhilError(
    `missing host tool${missing.length > 1 ? "s" : ""}: ${missing.join(", ")} — install with: apt-get install ${pkgs.join(" ")}`,
  );
}
