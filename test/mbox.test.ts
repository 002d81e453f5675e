import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { readMbox } from "../src/kernel/mails.ts";
import { amFailure, headerValue, type Mail, parsePatchSubject, selectSeries } from "../src/kernel/mbox.ts";
import { applySeries } from "../src/kernel/series.ts";

const path = (name: string) => join(import.meta.dirname, "fixtures", "series", name);
const fixture = (name: string) => readFileSync(path(name), "utf8");
const mbox = (name: string, data = readFileSync(path(name))) => readMbox(data, name, name);

// A v2 series of three patches from `git format-patch --cover-letter`, out of order, with a v1 of its first
// patch and a reply quoting its second (test/series.ts made it from edits of the 6.12 tree).
let mails: Mail[];
beforeAll(async () => {
  mails = await mbox("v2-with-reply-and-v1.mbox");
});

describe("a series from an mbox, read by git mailsplit and git mailinfo", () => {
  it("takes the latest version's patches in order, records the cover letter, leaves out the rest", () => {
    expect(mails).toHaveLength(6);
    const s = selectSeries(mails, "series.mbox");
    expect(s.version).toBe(2);
    expect(s.cover?.subject).toBe("[PATCH bpf-next v2 0/3] bpf: Comments around bpf_timer");
    expect(s.cover?.messageId).toMatch(/^cover\.\d+\.git\.dev@example\.org$/);
    expect(s.patches.map((p) => p.subject)).toEqual([
      "[PATCH bpf-next v2 1/3] bpf: Say where a bpf_timer's callback runs",
      "[PATCH bpf-next v2 2/3] bpf: Note that array values may hold a bpf_timer",
      "[PATCH bpf-next v2 3/3] selftests/bpf: Say why the timer test wants pid filtering",
    ]);
    expect(s.patches[0]?.mail.diff.toString()).toContain(
      "diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c",
    );
    expect(s.patches[0]?.mail.message).toContain("Acked-by: A Reviewer <reviewer@example.org>");
    // Each mail named by the line it starts at.
    expect(mails.map((m) => m.origin)).toEqual(
      [1, 22, 55, 84, 97, 128].map((l) => `v2-with-reply-and-v1.mbox:${l}`),
    );
    expect(s.ignored).toEqual([
      expect.stringMatching(/^v2-with-reply-and-v1\.mbox:55: \[PATCH bpf-next v1 1\/1\] .* \(version 1\)$/),
      expect.stringMatching(
        /^v2-with-reply-and-v1\.mbox:84: Re: \[PATCH bpf-next v2 2\/3\] .* \(not a patch\)$/,
      ),
    ]);
    // The reply's Acked-by is in the patch already: nothing to add.
    expect(s.patches.map((p) => p.trailers)).toEqual([[], [], []]);
  });

  it("takes another version when asked, and names the versions there are when it is not there", () => {
    const v1 = selectSeries(mails, "series.mbox", 1);
    expect(v1.patches.map((p) => p.title)).toEqual(["bpf: Say where a bpf_timer's callback runs"]);
    expect(() => selectSeries(mails, "series.mbox", 3)).toThrow(
      "--series-version 3: series.mbox has versions v1, v2",
    );
  });

  // Made by fixtures/series/make-lore-mbox.py with Python's email package in the layout of lore's t.mbox.gz.
  it("reads a thread as lore serves it: mboxrd, CRLF, quoted-printable and base64 bodies, RFC 2047 names", async () => {
    const lore = await mbox("lore-mboxrd-qp-base64-crlf.mbox");
    expect(lore).toHaveLength(5);
    const s = selectSeries(lore, "lore.mbox");
    expect(s.cover?.subject).toBe("[PATCH bpf-next v3 0/2] bpf: Comments around bpf_timer (for Jørgen)");
    expect(s.patches.map((p) => p.index)).toEqual([1, 2]);
    const [qp, b64] = s.patches.map((p) => p.mail.diff.toString("utf8"));
    // The quoted-printable soft break and =3D undone, the base64 text's CRLF stripped as git am -3 does.
    expect(qp).toContain(
      "+/* Every bpf_timer's hrtimer lands here: the program's callback runs with the map and key it was armed on. */\n",
    );
    expect(qp).toContain("struct bpf_hrtimer *t = container_of(");
    expect(b64).toMatch(/^diff --git a\/kernel\/bpf\/arraymap\.c/m);
    expect(b64).not.toContain("\r");
    // mboxrd's `>From ` escape undone in the message.
    expect(s.patches[0]?.mail.message).toMatch(/^From now on a reader/m);
    // Trailers from replies: the cover letter's for both, patch 1's own reply for it, none from quoted text.
    expect(s.patches.map((p) => p.trailers)).toEqual([
      ["Tested-by: A Tester <tester@example.org>", "Reviewed-by: A Reviewer <reviewer@example.org>"],
      ["Reviewed-by: A Reviewer <reviewer@example.org>"],
    ]);
  });

  it("splits an mbox served with CRLF line ends at every message, as with LF", async () => {
    const crlf = await mbox(
      "crlf.mbox",
      Buffer.from(fixture("v2-with-reply-and-v1.mbox").replace(/\n/g, "\r\n")),
    );
    expect(crlf).toHaveLength(6);
    expect(selectSeries(crlf, "crlf.mbox").patches).toHaveLength(3);
  });

  it("keeps a diff's bytes as they came (a file that is not UTF-8) and decodes a raw UTF-8 subject", async () => {
    const bytes = Buffer.concat([
      Buffer.from(
        "From x Mon Sep 17 00:00:00 2001\nSubject: [PATCH] bpf: T\u00f8ke's fix\n\nfix\n---\n",
        "utf8",
      ),
      Buffer.from("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-\xe9\n+\xff\n", "latin1"),
    ]);
    const s = selectSeries(await mbox("bytes.mbox", bytes), "bytes.mbox");
    expect(s.patches[0]?.title).toBe("bpf: T\u00f8ke's fix");
    expect(s.patches[0]?.mail.diff.includes(Buffer.from([0x2d, 0xe9, 0x0a]))).toBe(true);
  });

  it("reads one mail with no mbox separator, and refuses what git cannot read as mail in git's words", async () => {
    const one = await mbox(
      "one.eml",
      Buffer.from("Subject: [PATCH] x\n\nx\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n"),
    );
    expect(one.map((m) => [m.origin, m.subject])).toEqual([["one.eml:1", "[PATCH] x"]]);
    expect(() => selectSeries(one, "one.eml")).not.toThrow();
    const noDiff = await mbox("nodiff.eml", Buffer.from("Subject: [PATCH] x\n\nonly words\n"));
    expect(() => selectSeries(noDiff, "nodiff.eml")).toThrow(/\[PATCH\] x \(nodiff\.eml:1\) holds no diff/);
  });

  it("refuses a patch numbered beyond its series' total, naming it", () => {
    const [first] = mails.filter((m) => m.subject.includes("3/3"));
    const beyond = first && { ...first, subject: "[PATCH bpf-next v2 4/3] extra" };
    expect(() => selectSeries([...mails, ...(beyond ? [beyond] : [])], "s.mbox")).toThrow(
      /\[PATCH bpf-next v2 4\/3\] extra .* is numbered beyond the series' 3 patches/,
    );
  });

  it("says which patch is missing or doubled", () => {
    const without3 = mails.filter((m) => !m.subject.includes("3/3"));
    expect(() => selectSeries(without3, "s.mbox")).toThrow("--series s.mbox: v2 patch 3/3 is missing");
    const twice = [...mails, mails[1] ?? mails[0]].filter((m) => m !== undefined);
    expect(() => selectSeries(twice, "s.mbox")).toThrow(/v2 patch 2\/3 is there 2 times/);
  });

  it("reads a plain header, folded or not, only from the head", () => {
    const m = "Message-Id:\n <a@b>\nSubject: x\n\nMessage-Id: <body@b>\n";
    expect(headerValue(m, "message-id")).toBe("<a@b>");
    expect(headerValue(m, "in-reply-to")).toBeUndefined();
  });

  it("reads the tags mail tools read", () => {
    expect(
      parsePatchSubject("[PATCH v6 bpf-next 05/11] bpf: Prevent pointer mismatch in bpf_timer_init"),
    ).toEqual({
      version: 6,
      index: 5,
      total: 11,
      title: "bpf: Prevent pointer mismatch in bpf_timer_init",
    });
    expect(parsePatchSubject("[PATCH] bpf: one fix")).toEqual({
      version: 1,
      index: 1,
      total: 1,
      title: "bpf: one fix",
    });
    expect(parsePatchSubject("[RFC PATCH v3 2/4] x")).toMatchObject({ version: 3, index: 2, total: 4 });
    expect(parsePatchSubject("bpf: no tag")).toBeUndefined();
    // glued, comma-separated, and patchwork's downloads without the word PATCH
    expect(parsePatchSubject("[PATCHv2 1/3] x")).toMatchObject({ version: 2, index: 1, total: 3 });
    expect(parsePatchSubject("[PATCH bpf-next,v6,05/11] x")).toMatchObject({
      version: 6,
      index: 5,
      total: 11,
    });
    expect(parsePatchSubject("[bpf-next,v6,05/11] x")).toMatchObject({ version: 6, index: 5, total: 11 });
    expect(parsePatchSubject("[RFC] not numbered, not a patch")).toBeUndefined();
  });
});

describe("a series applied with git am -3 (a small git tree, real git)", () => {
  const env = {
    GIT_AUTHOR_NAME: "u",
    GIT_AUTHOR_EMAIL: "u@x",
    GIT_COMMITTER_NAME: "u",
    GIT_COMMITTER_EMAIL: "u@x",
  };
  it("applies a patch made before the base changed its context, by the three-way merge, with its replies' trailers", async () => {
    const repo = mkdtempSync(join(tmpdir(), "khil-3way-"));
    process.env.KHIL_CACHE = mkdtempSync(join(tmpdir(), "khil-3way-cache-"));
    const g = (...args: string[]) => execa("git", ["-C", repo, ...args], { env });
    const lines = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
    const write = (l: string[]) => writeFileSync(join(repo, "f.c"), `${l.join("\n")}\n`);
    await g("init", "-q");
    write(lines);
    await g("add", "f.c");
    await g("commit", "-q", "-m", "base");
    // The patch, made on that base: line 10 changed.
    write(lines.map((l, i) => (i === 9 ? "line 10, patched" : l)));
    await g("commit", "-q", "-am", "f: patch line 10");
    const patch = (await g("format-patch", "--stdout", "--thread", "--subject-prefix=PATCH v1", "-1")).stdout;
    await g("reset", "-q", "--hard", "HEAD~1");
    // The base moves on: line 7, in the patch's context, changes. Plain `git apply` cannot take the patch now.
    write(lines.map((l, i) => (i === 6 ? "line 7, moved on" : l)));
    await g("commit", "-q", "-am", "f: line 9 moved on");
    const id = /^Message-Id: <(.*)>$/im.exec(patch)?.[1] ?? "";
    const reply = `From r Mon Sep 17 00:00:00 2001\nFrom: R <r@x>\nSubject: Re: [PATCH v1] f: patch line 10\nIn-Reply-To: <${id}>\nMessage-Id: <reply@x>\n\nAcked-by: R <r@x>\n`;
    const file = join(repo, "..", `${repo.split("/").pop()}.mbox`);
    writeFileSync(file, `${patch}\n${reply}`);
    expect((await execa("git", ["-C", repo, "apply", "--check", file], { reject: false })).exitCode).not.toBe(
      0,
    );
    const t = await applySeries({ path: repo, label: "small tree" }, file, undefined);
    expect(readFileSync(join(t.path, "f.c"), "utf8")).toContain(
      "line 7, moved on\nline 8\nline 9\nline 10, patched\n",
    );
    expect(t.series.patches[0]?.trailers).toEqual(["Acked-by: R <r@x>"]);
    const body = (await execa("git", ["-C", t.path, "log", "-1", "--format=%B"])).stdout;
    expect(body).toMatch(/^Acked-by: R <r@x>$/m);
  });
});

describe("git am and git apply failures (captured)", () => {
  it("names the patch and the file of a 3-way conflict", () => {
    expect(amFailure(fixture("git-am-conflict.txt"))).toEqual({
      patchNo: 2,
      files: ["kernel/bpf/arraymap.c"],
      hunks: [],
    });
  });

  it("names the hunk that does not apply", () => {
    expect(amFailure(fixture("git-apply-check-conflict.txt"))).toEqual({
      files: ["kernel/bpf/arraymap.c"],
      hunks: ["kernel/bpf/arraymap.c:341"],
    });
  });
});
