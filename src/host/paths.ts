import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The repository root: harness data, kernel-config fragments, image recipes and suites live here. Found by
 * walking up to package.json, since this module runs from src/host/ and, bundled, from dist/.
 */
export const projectRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KHIL_CACHE) return resolve(env.KHIL_CACHE);
  if (env.XDG_CACHE_HOME) return join(resolve(env.XDG_CACHE_HOME), "khil");
  return join(homedir(), ".cache", "khil");
}

export function runsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KHIL_RUNS ? resolve(env.KHIL_RUNS) : join(projectRoot, "runs");
}
