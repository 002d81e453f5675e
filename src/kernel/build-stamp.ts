import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";

/**
 * Skipping make when nothing changed. Kbuild's own no-op walk takes ~6 s of a warm run on 2 cores; asking
 * `find` whether any file of the tree is newer than the last successful build takes well under one. The
 * stamp's time is when that make *started*, so an edit made during a build is still seen as newer, and its
 * content names the toolchain, so a compiler or pahole upgrade rebuilds.
 */
const STAMP = "khil-built.stamp";

export async function toolchainId(compiler: string, makeVars: readonly string[]): Promise<string> {
  const version = async (cmd: string) =>
    (await execa(cmd, ["--version"], { reject: false })).stdout.split("\n")[0] ?? "";
  return JSON.stringify({ makeVars, cc: await version(compiler), pahole: await version("pahole") });
}

/** True when the last make in `buildDir` succeeded with this toolchain and no tree file changed since. */
export async function upToDate(
  tree: string,
  buildDir: string,
  outputs: readonly string[],
  toolchain: string,
): Promise<boolean> {
  const stamp = join(buildDir, STAMP);
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== toolchain) return false;
  const since = statSync(stamp).mtimeMs;
  const inBuild = [join(buildDir, ".config"), ...outputs];
  if (inBuild.some((f) => !existsSync(f))) return false;
  if (statSync(join(buildDir, ".config")).mtimeMs > since) return false;
  const newer = await execa(
    "find",
    [tree, "-path", join(tree, ".git"), "-prune", "-o", "-type", "f", "-newer", stamp, "-print", "-quit"],
    { reject: false },
  );
  return newer.exitCode === 0 && newer.stdout.trim() === "";
}

export function markBuilt(buildDir: string, toolchain: string, makeStartedMs: number): void {
  const stamp = join(buildDir, STAMP);
  writeFileSync(stamp, toolchain);
  const t = makeStartedMs / 1000;
  utimesSync(stamp, t, t);
}
