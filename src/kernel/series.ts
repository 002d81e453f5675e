/**
 * A patch series applied onto a base tree: `git am -3` in a clone of the base in khil's cache (the user's
 * checkout is never touched), cached by base commit and series content.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { execa } from "execa";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir } from "../host/paths.ts";
import { git, isGitTree } from "./git.ts";
import {
  amFailure,
  decodedBody,
  type Mail,
  type Series,
  type SeriesPatch,
  selectSeries,
  splitMbox,
} from "./mbox.ts";
import type { KernelTree, SeriesRecord } from "./tree.ts";

/** The same identity and dates for every run: the commits a series becomes are the same each time. */
export const GIT_ENV = {
  GIT_AUTHOR_NAME: "khil",
  GIT_AUTHOR_EMAIL: "khil@localhost",
  GIT_COMMITTER_NAME: "khil",
  GIT_COMMITTER_EMAIL: "khil@localhost",
  GIT_COMMITTER_DATE: "2000-01-01T00:00:00Z",
};

const RANGE = /^[^\s/.][^\s]*\.\.[^\s]+$/;

/** The mails of `--series`: an mbox (`.gz` too), a directory of `git format-patch` files, or `A..B` in a git tree. */
export async function readMails(spec: string, tree: string | undefined): Promise<Mail[]> {
  if (existsSync(spec)) {
    if (statSync(spec).isDirectory()) {
      const files = readdirSync(spec)
        .filter((f) => /\.(patch|eml|mbox)$/.test(f))
        .sort();
      if (!files.length)
        throw new KhilError(`--series ${spec}: a directory with no *.patch, *.eml or *.mbox file in it`);
      return files.flatMap((f) => mailsOf(readFileSync(join(spec, f), "latin1"), f));
    }
    // Mails are read byte for byte (latin1: one character per byte) and handed to git the same way: a diff
    // of a file that is not UTF-8 must reach git am unchanged. Only subjects are decoded, for reports.
    const data = readFileSync(spec);
    const text = (spec.endsWith(".gz") ? gunzipSync(data) : data).toString("latin1");
    return mailsOf(text, basename(spec));
  }
  if (RANGE.test(spec)) {
    if (!tree || !(await isGitTree(tree)))
      throw new KhilError(`--series ${spec}: a range needs --tree PATH of a git repository to take it from`);
    const r = await execa("git", ["-C", tree, "format-patch", "--stdout", "--numbered", spec], {
      reject: false,
      maxBuffer: 1 << 30,
      encoding: "latin1",
    });
    if (r.exitCode !== 0) throw new KhilError(`--series ${spec}: ${r.stderr.trim().split("\n").pop()}`);
    if (!r.stdout.trim()) throw new KhilError(`--series ${spec}: no commits in that range of ${tree}`);
    return splitMbox(r.stdout, spec);
  }
  throw new KhilError(`--series ${spec}: no such file or directory, nor a BASE..TIP range`);
}

/** A mail without mbox's `From ` line (a single `.eml`) gets one, so that every form reads the same. */
function mailsOf(text: string, origin: string): Mail[] {
  return splitMbox(/^From /.test(text) ? text : `From khil Mon Sep 17 00:00:00 2001\n${text}`, origin);
}

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
  const range = existsSync(spec) ? undefined : spec;
  const { repo, commit } = await baseCommit(base, range);
  const key = createHash("sha256")
    .update(commit)
    .update(JSON.stringify(series.patches.map((p) => p.mail.raw)))
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
          commit: commits[i] ?? "",
        })),
      };
      writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
    } else log(`series ${spec} already applied onto ${onto} (cached: ${dir})`);
    const record = JSON.parse(readFileSync(recordFile, "utf8")) as SeriesRecord;
    return { path: dir, label, series: record };
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
      input: Buffer.from(decodedBody(patch.mail), "latin1"),
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

async function gitAm(
  dir: string,
  series: Series,
  spec: string,
  onto: string,
  commit: string,
): Promise<string[]> {
  const input = series.patches.map((p) => p.mail.raw).join("\n");
  const am = await execa("git", ["-C", dir, "am", "-3", "--whitespace=nowarn"], {
    input: Buffer.from(input, "latin1"),
    reject: false,
    all: true,
    env: GIT_ENV,
  });
  if (am.exitCode === 0) return (await git(dir, ["rev-list", "--reverse", `${commit}..HEAD`])).split("\n");
  rmSync(dir, { recursive: true, force: true });
  const failed = series.patches[(amFailure(am.all ?? "").patchNo ?? 0) - 1];
  throw new KhilError(
    `--series ${spec}: git am failed${failed ? ` at ${failed.subject}` : ""} on ${onto}: ${(am.all ?? "").trim().split("\n").pop()}`,
  );
}
