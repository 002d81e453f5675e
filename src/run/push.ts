import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { InfraError } from "../common/errors.ts";
import { globToRegExp, matchesAny } from "../common/glob.ts";

/** The files a suite pushes: its globs resolved in the selftests build directory. */
export function resolvePush(dir: string, globs: readonly string[]): string[] {
  const names = readdirSync(dir);
  const files = names.filter((n) => matchesAny(n, globs));
  const missing = globs.filter((g) => !names.some((n) => globToRegExp(g).test(n)) && !g.includes("*"));
  if (missing.length) throw new InfraError(`push: ${missing.join(", ")} not found in ${dir}`, "push");
  return files;
}

/** Pushed files the guest image must carry the shared libraries of. */
export function programsAmong(dir: string, files: readonly string[]): string[] {
  return files.filter((f) => !f.endsWith(".o") && !f.endsWith(".ko")).map((f) => `${dir}/${f}`);
}

/** One tar stream into the guest: files of a host directory, unpacked into a directory of the guest. */
export interface Push {
  dir: string;
  files: string[];
  dest: string;
}

/** Every file below `dir` (a kselftest install: the runner, its list and each target's programs). */
export function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}
