import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { ccacheCounts } from "../../src/kernel/make-output.ts";
import { resolveTree } from "../../src/kernel/tree.ts";
import { HOUR, khil, resultsOf, verdictOf } from "../helpers.ts";
import { edit, formatPatches, seriesMbox, TIMER_EDITS } from "../series.ts";

const packagedTree = async () => (await resolveTree({})).path;

/** The series with its second patch as if made against a tree where that comment read otherwise. */
async function brokenSeries(): Promise<{ dir: string; broken: string }> {
  const dir = mkdtempSync(join(tmpdir(), "khil-series-"));
  const { mbox } = await seriesMbox(await packagedTree(), dir);
  const broken = join(dir, "broken.mbox");
  copyFileSync(mbox, broken);
  edit(dir, {
    file: "broken.mbox",
    from: "-/* Called from syscall or from eBPF program */",
    to: "-/* Called from syscall or from an eBPF program */",
  });
  return { dir, broken };
}

describe("--series: a patch series applied onto the 6.12 tree", () => {
  it(
    "applies an mbox's latest version (cover letter, reply and v1 mixed in), builds, boots and tests it",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "khil-series-"));
      const { mbox } = await seriesMbox(await packagedTree(), dir);
      const r = await khil(["boot-and-test", "--arch", "x86_64", "--series", mbox, "--test", "timer"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stderr).toMatch(/--series: left out .*\[PATCH bpf-next v1 1\/1\]/);
      expect(r.stderr).toMatch(/--series: left out .*Re: \[PATCH bpf-next v2 2\/3\]/);
      const { dir: runDir, results } = resultsOf(r.stdout);
      const run = results.runs[0];
      expect(run?.status).toBe("passed");
      expect(verdictOf(run, "timer")).toBe("pass");
      expect(run?.series?.cover?.subject).toBe("[PATCH bpf-next v2 0/3] bpf: Comments around bpf_timer");
      expect(run?.series?.patches.map((p) => p.subject)).toEqual(
        TIMER_EDITS.map((e, i) => `[PATCH bpf-next v2 ${i + 1}/3] ${e.subject}`),
      );
      expect(run?.series?.patches.every((p) => /^[0-9a-f]{40}$/.test(p.commit))).toBe(true);
      expect(run?.series?.patches[0]?.messageId).toMatch(/@example\.org$/);
      // The patched tree is new to kbuild (its own build directory, helpers.c compiled there), yet it builds
      // from ccache: the compiler saw the same command lines as for the packaged tree.
      const stats = readFileSync(join(runDir, "build-x86_64.ccache.log"), "utf8");
      expect(stats).toMatch(/^# \.\.\/kernel\/bpf\/helpers\.c$/m);
      const { hits, misses } = ccacheCounts(stats);
      expect(misses, JSON.stringify({ hits, misses })).toBeLessThan((hits + misses) / 20);
      const junit = readFileSync(join(runDir, "junit.xml"), "utf8");
      expect(junit).toMatch(
        /<property name="series" value="series ..*series\.mbox \(v2, 3 patches\) onto linux-source-6\.12/,
      );
      expect(junit).toContain("bpf: Say where a bpf_timer's callback runs");
      expect(r.stdout).toMatch(/^ {2}series .*\n {2}1\/3 [0-9a-f]{12} \[PATCH bpf-next v2 1\/3\]/m);
    },
    HOUR,
  );

  it("stops before building, exit 2, naming the patch that does not apply and its hunk", async () => {
    const { broken } = await brokenSeries();
    const r = await khil(["build", "--arch", "x86_64", "--series", broken], { timeoutMs: 5 * 60_000 });
    expect(r.exitCode, r.all).toBe(2);
    const lines = r.stderr
      .trim()
      .split("\n")
      .filter((l) => l.startsWith("khil: error:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^khil: error: --series .*broken\.mbox: \[PATCH bpf-next v2 2\/3\] bpf: Note that array values may hold a bpf_timer \(broken\.mbox:\d+\) does not apply to linux-source-6\.12 .* @ [0-9a-f]{12}: hunk at kernel\/bpf\/arraymap\.c:\d+$/,
    );
    expect(r.stderr).not.toContain("configuring");
  }, 300_000);

  it("in a matrix, a series that does not apply is that cell's error: the matrix goes on and says which", async () => {
    const { dir, broken } = await brokenSeries();
    const matrix = join(dir, "matrix.yaml");
    writeFileSync(
      matrix,
      `arch: [x86_64]\nkernel: ["6.12"]\nsuite: [bpf-timer]\nvariant: { default: [] }\nseries: { broken: ${broken} }\n`,
    );
    const r = await khil(["matrix", "--file", matrix], { timeoutMs: 5 * 60_000 });
    expect(r.exitCode, r.all).toBe(1);
    const [run] = resultsOf(r.stdout).results.runs;
    expect(run?.status).toBe("error");
    expect(run?.error?.stage).toBe("series");
    expect(run?.error?.message).toMatch(
      /does not apply to linux-source-6\.12 .*: hunk at kernel\/bpf\/arraymap\.c:\d+$/,
    );
    expect(r.stderr).not.toContain("configuring");
  }, 300_000);

  it("never touches the user's checkout: a range of it, applied and built, leaves status, HEAD and stashes as found", async () => {
    // Only what khil does to the checkout is checked here, so a tree with just the files khil looks at will do.
    const user = mkdtempSync(join(tmpdir(), "khil-user-tree-"));
    const git = (...args: string[]) =>
      execa("git", ["-C", user, ...args], {
        env: {
          GIT_AUTHOR_NAME: "u",
          GIT_AUTHOR_EMAIL: "u@x",
          GIT_COMMITTER_NAME: "u",
          GIT_COMMITTER_EMAIL: "u@x",
        },
      });
    const tree = await packagedTree();
    for (const f of [
      "Kconfig",
      "Makefile",
      "scripts/kconfig/merge_config.sh",
      "include/uapi/linux/bpf.h",
      "kernel/bpf/helpers.c",
    ]) {
      mkdirSync(dirname(join(user, f)), { recursive: true });
      copyFileSync(join(tree, f), join(user, f));
    }
    await git("init", "-q");
    await git("add", "-A");
    await git("commit", "-qm", "base");
    edit(user, {
      file: "kernel/bpf/helpers.c",
      from: "static enum hrtimer_restart bpf_timer_cb(",
      to: "/* a comment */\nstatic enum hrtimer_restart bpf_timer_cb(",
    });
    await git("commit", "-qam", "bpf: a comment");
    writeFileSync(join(user, "Kconfig"), `${readFileSync(join(user, "Kconfig"), "utf8")}# stashed\n`);
    await git("stash", "-q");
    writeFileSync(join(user, "untracked.txt"), "mine\n");
    const state = async () =>
      [
        (await git("status", "--porcelain")).stdout,
        (await git("rev-parse", "HEAD")).stdout,
        (await git("symbolic-ref", "HEAD")).stdout,
        (await git("stash", "list")).stdout,
        (await git("worktree", "list", "--porcelain")).stdout,
      ].join("\n");
    const before = await state();
    const r = await khil(["build", "--arch", "x86_64", "--tree", user, "--series", "HEAD~1..HEAD"], {
      timeoutMs: 5 * 60_000,
    });
    expect(r.stderr).toMatch(/applying 1 patch of HEAD~1\.\.HEAD onto .*khil-user-tree-/);
    expect(await state()).toBe(before);
  }, 300_000);

  it("says a series the base already has is already applied, not a conflict", async () => {
    const dir = mkdtempSync(join(tmpdir(), "khil-series-"));
    const line = "\tstruct bpf_map *map = t->cb.map;\n";
    const file = "kernel/bpf/helpers.c";
    const [patch] = await formatPatches(
      await packagedTree(),
      dir,
      [
        {
          file,
          from: "\tvoid *value = t->cb.value;\n",
          to: `${line}\tvoid *value = t->cb.value;\n`,
          subject: "bpf: Take the map in bpf_timer_cb",
        },
      ],
      { version: 1, base: [{ file, from: line, to: "", subject: "" }] },
    );
    const mbox = join(dir, "in-base.mbox");
    writeFileSync(mbox, patch ?? "");
    const r = await khil(["build", "--arch", "x86_64", "--series", mbox], { timeoutMs: 5 * 60_000 });
    expect(r.exitCode, r.all).toBe(2);
    expect(r.stderr).toMatch(
      /khil: error: --series .*in-base\.mbox: \[PATCH bpf-next v1 1\/1\] bpf: Take the map in bpf_timer_cb is already applied in linux-source-6\.12/,
    );
  }, 300_000);
});
