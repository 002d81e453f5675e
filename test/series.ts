/**
 * Patch series made the way a list carries them, from real edits of a kernel tree's files: `git format-patch`
 * of commits in a scratch repository holding just the files they touch (the blobs are the tree's, so `git am
 * -3` can fall back on them), then assembled into an mbox with a cover letter, a reply and an older version.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { resolveTree } from "../src/kernel/tree.ts";

export interface Edit {
  file: string;
  from: string;
  to: string;
  subject: string;
}

/** Three edits of the timer series' files; the first in kernel/bpf/helpers.c. */
export const TIMER_EDITS: Edit[] = [
  {
    file: "kernel/bpf/helpers.c",
    from: "static enum hrtimer_restart bpf_timer_cb(struct hrtimer *hrtimer)\n",
    to: "/* Every bpf_timer's hrtimer lands here: the program's callback runs with the map and key it was armed on. */\nstatic enum hrtimer_restart bpf_timer_cb(struct hrtimer *hrtimer)\n",
    subject: "bpf: Say where a bpf_timer's callback runs",
  },
  {
    file: "kernel/bpf/arraymap.c",
    from: "/* Called from syscall or from eBPF program */\nstatic long array_map_update_elem(",
    to: "/* Called from syscall or from eBPF program, also for values that hold a bpf_timer */\nstatic long array_map_update_elem(",
    subject: "bpf: Note that array values may hold a bpf_timer",
  },
  {
    file: "tools/testing/selftests/bpf/prog_tests/timer.c",
    from: "/* TODO: use pid filtering */\nvoid serial_test_timer(void)",
    to: "/* TODO: use pid filtering (the timer programs run for every task) */\nvoid serial_test_timer(void)",
    subject: "selftests/bpf: Say why the timer test wants pid filtering",
  },
];

/** A patch as a developer might send it by mistake: a WARN in the callback every bpf_timer's hrtimer runs. */
export const PLANTED_WARN = {
  file: "kernel/bpf/helpers.c",
  from: "\tBTF_TYPE_EMIT(struct bpf_timer);\n\tcallback_fn = rcu_dereference_check(",
  to: "\tBTF_TYPE_EMIT(struct bpf_timer);\n\tWARN_ON_ONCE(1);\n\tcallback_fn = rcu_dereference_check(",
  subject: "bpf: Warn when a bpf_timer fires",
};

/** PLANTED_WARN as a one-patch mbox against the packaged 6.12 tree, written in `dir`. */
export async function plantedWarnMbox(dir: string): Promise<string> {
  const [mail] = await formatPatches((await resolveTree({})).path, dir, [PLANTED_WARN], { version: 1 });
  const mbox = join(dir, "warn.mbox");
  writeFileSync(mbox, mail ?? "");
  return mbox;
}

const ID = {
  GIT_AUTHOR_NAME: "A Developer",
  GIT_AUTHOR_EMAIL: "dev@example.org",
  GIT_COMMITTER_NAME: "A Developer",
  GIT_COMMITTER_EMAIL: "dev@example.org",
  GIT_AUTHOR_DATE: "2021-07-14T18:54:04Z",
  GIT_COMMITTER_DATE: "2021-07-14T18:54:04Z",
};

async function g(repo: string, args: string[]) {
  return (await execa("git", ["-C", repo, ...args], { env: ID })).stdout;
}

/** Replaces `e.from` with `e.to` in `e.file` below `root`; a `from` not there is the test's own mistake. */
export function edit(root: string, e: Pick<Edit, "file" | "from" | "to">): void {
  const path = join(root, e.file);
  const text = readFileSync(path, "utf8");
  if (!text.includes(e.from)) throw new Error(`${e.file}: no ${JSON.stringify(e.from)} to edit`);
  writeFileSync(path, text.replace(e.from, e.to));
}

/**
 * `git format-patch` mails of `edits` applied one after the other to `tree`'s files (after `base`, edits
 * the scratch repository's base commit has and the tree does not).
 */
export async function formatPatches(
  tree: string,
  dir: string,
  edits: readonly Edit[],
  opts: { version: number; cover?: string; base?: readonly Edit[] },
): Promise<string[]> {
  const repo = join(dir, `repo-v${opts.version}`);
  mkdirSync(repo, { recursive: true });
  await g(repo, ["init", "-q"]);
  for (const file of new Set(edits.map((e) => e.file))) {
    mkdirSync(dirname(join(repo, file)), { recursive: true });
    copyFileSync(join(tree, file), join(repo, file));
  }
  for (const e of opts.base ?? []) edit(repo, e);
  await g(repo, ["add", "-A"]);
  await g(repo, ["commit", "-q", "-m", "base"]);
  for (const e of edits) {
    edit(repo, e);
    await g(repo, [
      "commit",
      "-q",
      "-a",
      "-m",
      `${e.subject}\n\nA change made for khil's tests.\n\nSigned-off-by: A Developer <dev@example.org>\nAcked-by: A Reviewer <reviewer@example.org>`,
    ]);
  }
  const out = join(dir, `v${opts.version}`);
  await g(repo, [
    "format-patch",
    "-q",
    "--numbered",
    `-v${opts.version}`,
    "--thread",
    "--subject-prefix=PATCH bpf-next",
    ...(opts.cover ? ["--cover-letter"] : []),
    "-o",
    out,
    `HEAD~${edits.length}`,
  ]);
  const files = readdirSync(out).sort();
  const mails = files.map((f) => readFileSync(join(out, f), "utf8"));
  if (opts.cover)
    mails[0] = (mails[0] ?? "")
      .replace("*** SUBJECT HERE ***", opts.cover)
      .replace("*** BLURB HERE ***", "Three small changes, for khil's tests.");
  return mails;
}

/**
 * The mbox of a v2 series of `edits` as saved from a list archive: the cover letter and patches of v2, with
 * a v1 of the first patch and a reply to the second mixed in, out of order.
 */
export async function seriesMbox(tree: string, dir: string, edits: readonly Edit[] = TIMER_EDITS) {
  const v2 = await formatPatches(tree, dir, edits, { version: 2, cover: "bpf: Comments around bpf_timer" });
  const first = edits[0];
  if (!first) throw new Error("no edits");
  const [v1] = await formatPatches(tree, dir, [{ ...first, to: first.to.replace("Every", "Each") }], {
    version: 1,
  });
  const second = v2[2] ?? "";
  const messageId = /^Message-Id: <([^>]+)>/im.exec(second)?.[1];
  const reply = [
    "From reviewer@example.org Thu Jul 15 09:00:00 2021",
    "From: A Reviewer <reviewer@example.org>",
    `Subject: Re: ${/^Subject: (.*(?:\n .*)*)$/m.exec(second)?.[1]?.replace(/\n /g, " ")}`,
    `In-Reply-To: <${messageId}>`,
    "Message-Id: <reply-1@example.org>",
    "",
    "On Wed, Jul 14, 2021 A Developer wrote:",
    ...second
      .split("\n")
      .filter((l) => l.startsWith("diff --git") || l.startsWith("+"))
      .map((l) => `> ${l}`),
    "",
    "Acked-by: A Reviewer <reviewer@example.org>",
    "",
  ].join("\n");
  const [cover, ...patches] = v2;
  const mails = [cover, patches[1], v1, reply, patches[0], ...patches.slice(2)];
  const mbox = join(dir, "series.mbox");
  writeFileSync(mbox, mails.map((m) => (m ?? "").replace(/\n*$/, "\n")).join("\n"));
  return { mbox, patchFiles: join(dir, "v2") };
}
