import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { KhilError } from "../common/errors.ts";

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
  "dpkg-deb": "dpkg",
  "apt-get": "apt",
  "clang-19": "clang-19",
  "llc-19": "llvm-19",
  "ld.lld-19": "lld-19",
  "pkg-config": "pkg-config",
  git: "git",
};

/**
 * Where the shell finds a command: a path as given, else the first executable file of that name in a $PATH
 * directory (no fork). Undefined when there is none.
 */
export function findOnPath(command: string, path = process.env.PATH ?? ""): string | undefined {
  const runnable = (f: string) => {
    try {
      accessSync(f, constants.X_OK);
      return statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (command.includes("/")) return runnable(command) ? command : undefined;
  return path
    .split(":")
    .map((d) => join(d || ".", command))
    .find(runnable);
}

/** A command, or a command with the package that provides it where khil's own table cannot know it. */
export type Tool = string | { command: string; pkg: string };

/** Fails with one line naming every missing command and the apt packages that provide them. */
export async function requireTools(tools: readonly Tool[]): Promise<void> {
  const missing: { command: string; pkg: string }[] = [];
  for (const t of tools) {
    const { command, pkg } = typeof t === "string" ? { command: t, pkg: PACKAGE_OF[t] ?? t } : t;
    if (!missing.some((m) => m.command === command) && !findOnPath(command)) missing.push({ command, pkg });
  }
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  throw new KhilError(
    `missing host tool${missing.length > 1 ? "s" : ""}: ${missing.map((m) => m.command).join(", ")} — install with: apt-get install ${pkgs.join(" ")}`,
  );
}
