import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { execa } from "execa";
import { cacheDir } from "../../src/host/paths.ts";
import { resolveTree } from "../../src/kernel/tree.ts";

/** A change to plant at one commit of the line: a file, the text it must hold, what replaces it. */
export interface Plant {
  file: string;
  from: string;
  to: string;
  subject: string;
}

/**
 * A real git repository made from the default tree: a base commit, then a line of `commits` ordinary
 * commits, the `breaking`-th of which plants a change.
 * It lives in a cache of its own (`$KHIL_CACHE/<name>/cache`) whose layout matches the main cache's, and
 * shares the main ccache: kernel sources are then at the same path relative to the build directory, and the
 * build hits the cache. `env` is what a khil run on it needs.
 */
export async function makeRepo(name: string, plant: Plant, commits: number, breaking: number) {
  const tree = await resolveTree({ kernel: "6.12" });
  const cache = join(cacheDir(), name, "cache");
  const repo = join(cache, "trees", basename(tree.path));
  rmSync(join(cacheDir(), name), { recursive: true, force: true });
  cpSync(tree.path, repo, { recursive: true });
  // Debian's tree ignores everything at its top level (".gitignore" ends with "/*").
  const gi = join(repo, ".gitignore");
  writeFileSync(gi, readFileSync(gi, "utf8").replace(/^\/\*$/m, ""));
  const git = (...args: string[]) =>
    execa("git", ["-C", repo, ...args], {
      env: {
        GIT_AUTHOR_NAME: "khil",
        GIT_AUTHOR_EMAIL: "khil@invalid",
        GIT_COMMITTER_NAME: "khil",
        GIT_COMMITTER_EMAIL: "khil@invalid",
      },
    });
  await git("init", "-q", "-b", "main");
  await git("add", "-A");
  await git("commit", "-q", "-m", "base: linux-source-6.12");
  const shas: string[] = [];
  for (let i = 1; i <= commits; i++) {
    if (i === breaking) {
      const f = join(repo, plant.file);
      const src = readFileSync(f, "utf8");
      if (!src.includes(plant.from)) throw new Error(`${plant.file} has changed: update the planted change`);
      writeFileSync(f, src.replace(plant.from, plant.to));
      await git("commit", "-q", "-am", plant.subject);
    } else {
      writeFileSync(join(repo, "Documentation/bpf/khil-bisect.rst"), `step ${i}\n`);
      await git("add", "Documentation/bpf/khil-bisect.rst");
      await git("commit", "-q", "-m", `docs: bisect test step ${i}`);
    }
    shas.push((await git("rev-parse", "HEAD")).stdout.trim());
  }
  const env = { KHIL_CACHE: cache, KHIL_CCACHE_DIR: join(cacheDir(), "ccache") };
  return { repo, cache, shas, git, env };
}
