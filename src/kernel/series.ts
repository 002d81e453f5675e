/**
 * A patch series applied onto a base tree: `git am -3` in a clone of the base in khil's cache (the user's
 * checkout is never touched), cached by base commit and series content.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir } from "../host/paths.ts";
import { git, isGitTree } from "./git.ts";
import { readMails } from "./mails.ts";
import { amFailure, type Series, type SeriesPatch, selectSeries } from "./mbox.ts";
import type { KernelTree, SeriesRecord } from "./tree.ts";

/** The same identity and dates for every run: the commits a series becomes are the same each time. */
export const GIT_ENV = {
  GIT_AUTHOR_NAME: "khil",
  GIT_AUTHOR_EMAIL: "khil@localhost",
  GIT_COMMITTER_NAME: "khil",
  GIT_COMMITTER_EMAIL: "khil@localhost",
  GIT_COMMITTER_DATE: "2000-01-01T00:00:00Z",
};

/**
 * The base as a git commit: a user's git tree at its HEAD (refused with uncommitted changes, which the series
 * would silently not see), a range's BASE, or a packaged tree made a repository once, in the cache, its one
 * commit named after the package.
 */
async function baseCommit(
  base: KernelTree,
  range: string | undefined,
): Promise<{ repo: string; commit: string }> {
  if (await isGitTree(base.path)) {
    if (range)
      return {
        repo: base.path,
        commit: await git(base.path, ["rev-parse", `${range.split("..")[0]}^{commit}`]),
      };
    const dirty = await git(base.path, ["status", "--porcelain", "--untracked-files=no"]);
    if (dirty)
      throw new KhilError(
        `--tree ${base.path} has uncommitted changes: the series is applied onto its HEAD, which lacks them; commit or stash them first`,
      );
    return { repo: base.path, commit: await git(base.path, ["rev-parse", "HEAD"]) };
  }
  if (!base.path.startsWith(join(cacheDir(), "trees")))
    throw new KhilError(
      `--tree ${base.path} is not a git repository: --series applies patches with git am onto a commit; run 'git init && git add -f -A && git commit -m base' there first`,
    );
  const repo = join(cacheDir(), "git", `${basename(base.path)}.git`);
  return withLock(repo, "making a git repository of the packaged tree", async () => {
    if (!existsSync(join(repo, "khil-done"))) {
      log(`making ${base.label} a git repository for --series (once, about a minute)`);
      rmSync(repo, { recursive: true, force: true });
      await execa("git", ["init", "-q", "--bare", repo]);
      // Debian's tree ignores its whole top level (`/*` in .gitignore): add everything regardless.
      const g = (args: string[]) =>
        execa("git", [`--git-dir=${repo}`, `--work-tree=${base.path}`, ...args], {
          env: { ...GIT_ENV, GIT_AUTHOR_DATE: GIT_ENV.GIT_COMMITTER_DATE },
        });
      await g(["add", "-f", "-A"]);
      await g(["commit", "-q", "-m", base.label]);
      writeFileSync(join(repo, "khil-done"), "");
    }
    return { repo, commit: await git(repo, ["rev-parse", "HEAD"]) };
  });
}

/** A clone that borrows the source's objects (`--shared`) and checks nothing out yet. */
async function cloneShared(from: string, to: string): Promise<void> {
  await execa("git", ["clone", "-q", "--shared", "--no-checkout", from, to]);
}

/**
 * A clone of an applied series kept for one use (`each` for --each-patch, `bisect`), where commits are
 * checked out in turn: the applied series itself stays at its last patch, as its cache entry says.
 */
export async function seriesWorkTree(tree: KernelTree, use: string): Promise<string> {
  const work = `${tree.path}-${use}`;
  if (!existsSync(join(work, ".git"))) await cloneShared(tree.path, work);
  return work;
}

export async function applySeries(
  base: KernelTree,
  spec: string,
  version: number | undefined,
): Promise<KernelTree & { series: SeriesRecord }> {
  const mails = await readMails(spec, base.path);
  const series = selectSeries(mails, spec, version);
  for (const i of series.ignored) log(`--series: left out ${i}`);
  for (const p of series.patches)
    if (p.trailers.length) log(`--series: ${p.subject}: from replies: ${p.trailers.join(", ")}`);
  const range = existsSync(spec) ? undefined : spec;
  const { repo, commit } = await baseCommit(base, range);
  const key = createHash("sha256")
    .update(commit)
    // A mail as it came, less the blank line mailsplit keeps before the next one: the same series in a thread
    // that grew is the same key.
    .update(
      JSON.stringify(
        series.patches.map((p) => [p.mail.raw.toString("latin1").replace(/\n+$/, ""), p.trailers]),
      ),
    )
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir(), "series", key);
  const recordFile = `${dir}.json`;
  const n = series.patches.length;
  const patches = `${n} patch${n > 1 ? "es" : ""}`;
  const label = `${base.label} + ${series.cover?.subject ?? series.patches[0]?.subject} (${patches})`;
  const onto = `${base.label} @ ${commit.slice(0, 12)}`;
  return withLock(dir, "applying the series", async () => {
    if (!existsSync(recordFile)) {
      const partial = `${dir}.partial`;
      rmSync(partial, { recursive: true, force: true });
      await checkApplies(repo, commit, series, spec, onto);
      log(`applying ${patches} of ${spec} onto ${onto}`);
      await cloneShared(repo, partial);
      await git(partial, ["checkout", "-q", "--detach", commit]);
      const commits = await gitAm(partial, series, spec, onto, commit);
      renameSync(partial, dir);
      const record: SeriesRecord = {
        source: spec,
        base: base.label,
        baseCommit: commit,
        version: series.version,
        ...(series.cover ? { cover: series.cover } : {}),
        patches: series.patches.map((p, i) => ({
          subject: p.subject,
          ...(p.messageId ? { messageId: p.messageId } : {}),
          ...(p.trailers.length ? { trailers: p.trailers } : {}),
          commit: commits[i] ?? "",
        })),
      };
      writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
    } else log(`series ${spec} already applied onto ${onto} (cached: ${dir})`);
    const record = JSON.parse(readFileSync(recordFile, "utf8")) as SeriesRecord;
    const last = record.patches.at(-1)?.commit;
    return {
      path: dir,
      label,
      name: base.name ?? base.label,
      ...(last ? { commit: last } : {}),
      series: record,
    };
  });
}

/**
 * Each patch applied in turn to a scratch index of the base (no checkout: seconds, not a minute), so that a
 * patch that does not apply is named with its hunks, and one the base already has is said to be applied,
 * before anything is checked out or built.
 */
async function checkApplies(
  repo: string,
  commit: string,
  series: Series,
  spec: string,
  onto: string,
): Promise<void> {
  const index = join(cacheDir(), "series", `index-${process.pid}`);
  mkdirSync(dirname(index), { recursive: true });
  const env = { GIT_INDEX_FILE: index };
  const apply = (patch: SeriesPatch, args: string[]) =>
    execa("git", ["-C", repo, "apply", "--cached", ...args, "-"], {
      input: patch.mail.diff,
      env,
      reject: false,
      all: true,
    });
  try {
    await execa("git", ["-C", repo, "read-tree", commit], { env });
    for (const patch of series.patches) {
      const r = await apply(patch, []);
      if (r.exitCode === 0) continue;
      // `git am -3` falls back to a three-way merge against the blobs the patch names: so does the check.
      if ((await apply(patch, ["--3way"])).exitCode === 0) continue;
      if ((await apply(patch, ["--check", "-R"])).exitCode === 0)
        throw new KhilError(
          `--series ${spec}: ${patch.subject} is already applied in ${onto} (it reverse-applies cleanly): test that tree as it is, or give a base without the series`,
        );
      const { hunks, files } = amFailure(r.all ?? "");
      const where = hunks.length ? `hunk at ${hunks.join(", ")}` : files.join(", ") || (r.all ?? "").trim();
      throw new KhilError(
        `--series ${spec}: ${patch.subject} (${patch.mail.origin}) does not apply to ${onto}: ${where}`,
      );
    }
  } finally {
    rmSync(index, { force: true });
  }
}

/**
 * `git am -3` of each patch in turn (its own failure is the error, naming the patch), then the trailers its
 * replies gave added to its commit, as `b4 am` would: the commits are the series as it would be merged.
 */
async function gitAm(
  dir: string,
  series: Series,
  spec: string,
  onto: string,
  commit: string,
): Promise<string[]> {
  for (const p of series.patches) {
    const am = await execa("git", ["-C", dir, "am", "-3", "--quoted-cr=strip", "--whitespace=nowarn"], {
      input: p.mail.raw,
      reject: false,
      all: true,
      env: GIT_ENV,
    });
    if (am.exitCode !== 0) {
      rmSync(dir, { recursive: true, force: true });
      const { hunks, files } = amFailure(am.all ?? "");
      const where = hunks.length ? `hunk at ${hunks.join(", ")}` : files.join(", ");
      throw new KhilError(
        `--series ${spec}: git am -3 failed at ${p.subject} (${p.mail.origin}) on ${onto}: ${where || (am.all ?? "").trim().split("\n").pop()}`,
      );
    }
    if (!p.trailers.length) continue;
    // No hooks of the user's: git am ran none, and a commit-msg hook would change the commits.
    const amend = await execa(
      "git",
      [
        ...[
          "-c",
          "core.hooksPath=/dev/null",
          "-C",
          dir,
          "commit",
          "-q",
          "--amend",
          "--no-edit",
          "--no-verify",
        ],
        ...p.trailers.flatMap((t) => ["--trailer", t]),
      ],
      { env: GIT_ENV, reject: false, all: true },
    );
    if (amend.exitCode !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new KhilError(
        `--series ${spec}: adding the replies' trailers to ${p.subject} failed: ${(amend.all ?? "").trim().split("\n").pop()}`,
      );
    }
  }
  return (await git(dir, ["rev-list", "--reverse", `${commit}..HEAD`])).split("\n");
}
