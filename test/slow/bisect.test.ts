import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { cacheDir, projectRoot } from "../../src/host/paths.ts";
import { resolveTree } from "../../src/kernel/tree.ts";
import { HOUR } from "../helpers.ts";

const COMMITS = 16;
const BREAKING = 11;

/** A change to plant at one commit of the line: a file, the text it must hold, what replaces it. */
interface Plant {
  file: string;
  from: string;
  to: string;
  subject: string;
}

const NO_HASH_TIMER_CALLBACKS: Plant = {
  file: "kernel/bpf/helpers.c",
  from: "\tcallback_fn((u64)(long)map, (u64)(long)key, (u64)(long)value, 0, 0);",
  to: "\tif (map->map_type == BPF_MAP_TYPE_ARRAY)\n\t\tcallback_fn((u64)(long)map, (u64)(long)key, (u64)(long)value, 0, 0);",
  subject: "bpf: only run timer callbacks of array maps",
};

const PANIC_AT_BOOT: Plant = {
  file: "init/main.c",
  from: "\tkernel_init_freeable();\n",
  to: '\tkernel_init_freeable();\n\tpanic("khil: planted boot panic");\n',
  subject: "init: panic before running init",
};

/**
 * A real git repository made from the default tree: a base commit, then a line of ordinary commits, one of
 * which stops bpf_timer_cb from calling the callbacks of hash and LRU map timers.
 * It lives in a cache of its own whose layout matches the main cache's, and shares the main ccache: kernel
 * sources are then at the same path relative to the build directory, and the build hits the cache.
 */
async function makeRepo(plant: Plant, commits = COMMITS, breaking = BREAKING) {
  const tree = await resolveTree({ kernel: "6.12" });
  const cache = join(cacheDir(), "bisect-test", "cache");
  const repo = join(cache, "trees", basename(tree.path));
  rmSync(join(cacheDir(), "bisect-test"), { recursive: true, force: true });
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
  return { repo, cache, shas };
}

describe("khil bisect (slow tier: npm run test:slow)", () => {
  it(
    `names the commit that broke the timer tests among ${COMMITS}, leaving the tree as found`,
    async () => {
      const { repo, cache, shas } = await makeRepo(NO_HASH_TIMER_CALLBACKS);
      const r = await execa(
        "node",
        [
          join(projectRoot, "bin/khil.js"),
          "bisect",
          "--tree",
          repo,
          "--good",
          "HEAD~16",
          "--bad",
          "HEAD",
          "--arch",
          "x86_64",
        ],
        {
          reject: false,
          all: true,
          env: { KHIL_CACHE: cache, KHIL_CCACHE_DIR: join(cacheDir(), "ccache") },
        },
      );
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout).toContain(
        `first bad commit: ${shas[BREAKING - 1]} bpf: only run timer callbacks of array maps`,
      );
      const file = /^bisect: (\S+bisect\.json)$/m.exec(r.stdout)?.[1] ?? "";
      expect(existsSync(file)).toBe(true);
      const report = JSON.parse(readFileSync(file, "utf8"));
      // Two end checks, the bisect steps, and the parent if bisect had not tested it.
      const bisectSteps = report.steps.filter(
        (s: { commit: string }) => s.commit !== report.good && s.commit !== report.bad,
      );
      expect(bisectSteps.length).toBeLessThanOrEqual(Math.ceil(Math.log2(COMMITS)) + report.skips + 1);
      // Each commit between the ends changes documentation only, or is the breaking one, whose kernel the bad
      // end already has: the image and test files match an end's, whose verdict the step takes unbooted.
      for (const s of bisectSteps) {
        expect(s.reused?.commit, `${s.commit}: ${s.reason}`).toMatch(
          new RegExp(`^(${report.good}|${report.bad})$`),
        );
        expect(s.timings.boot, s.commit).toBeUndefined();
      }
      expect(report.medianStepRatio).toBeGreaterThan(0);
      const head = await execa("git", ["-C", repo, "symbolic-ref", "--short", "HEAD"]);
      expect(head.stdout.trim()).toBe("main");
      expect((await execa("git", ["-C", repo, "status", "--porcelain"])).stdout).toBe("");
    },
    2 * HOUR,
  );

  it(
    "--type boot names the commit whose kernel panics before SSH (a boot failure with a splat is bad)",
    async () => {
      const { repo, cache, shas } = await makeRepo(PANIC_AT_BOOT, 8, 6);
      const r = await execa(
        "node",
        [
          join(projectRoot, "bin/khil.js"),
          "bisect",
          "--type",
          "boot",
          "--tree",
          repo,
          "--good",
          "HEAD~8",
          "--bad",
          "HEAD",
        ],
        { reject: false, all: true, env: { KHIL_CACHE: cache, KHIL_CCACHE_DIR: join(cacheDir(), "ccache") } },
      );
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout).toContain(`first bad commit: ${shas[5]} ${PANIC_AT_BOOT.subject}`);
      expect(r.stdout).toMatch(
        /bad +\d+ s +init: panic before running init +\(kernel panic during boot: Kernel panic - not syncing: khil: planted boot panic/,
      );
    },
    2 * HOUR,
  );
});
