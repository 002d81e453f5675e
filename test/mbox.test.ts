import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  amFailure,
  decodedBody,
  decodeWords,
  parseMail,
  parsePatchSubject,
  selectSeries,
  splitMbox,
} from "../src/kernel/mbox.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", "series", name), "utf8");
// A v2 series of three patches from `git format-patch --cover-letter`, out of order, with a v1 of its first
// patch and a reply quoting its second (test/series.ts made it from edits of the 6.12 tree).
const mails = splitMbox(fixture("v2-with-reply-and-v1.mbox"), "series.mbox");

describe("a series from an mbox", () => {
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
    expect(s.patches[0]?.mail.body).toContain("diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c");
    expect(s.patches[0]?.mail.body).toContain("Acked-by: A Reviewer <reviewer@example.org>");
    expect(s.ignored).toEqual([
      expect.stringMatching(/^series\.mbox:\d+: \[PATCH bpf-next v1 1\/1\] .* \(version 1\)$/),
      expect.stringMatching(/^series\.mbox:\d+: Re: \[PATCH bpf-next v2 2\/3\] .* \(not a patch\)$/),
    ]);
  });

  it("takes another version when asked, and names the versions there are when it is not there", () => {
    const v1 = selectSeries(mails, "series.mbox", 1);
    expect(v1.patches.map((p) => p.title)).toEqual(["bpf: Say where a bpf_timer's callback runs"]);
    expect(() => selectSeries(mails, "series.mbox", 3)).toThrow(
      "--series-version 3: series.mbox has versions v1, v2",
    );
  });

  it("splits an mbox served with CRLF line ends at every message, as with LF", () => {
    const crlf = splitMbox(
      readFileSync(join(import.meta.dirname, "fixtures/series/v2-with-reply-and-v1.mbox"), "utf8").replace(
        /\n/g,
        "\r\n",
      ),
      "crlf.mbox",
    );
    expect(crlf).toHaveLength(6);
    expect(selectSeries(crlf, "crlf.mbox").patches).toHaveLength(3);
  });

  it("sees the diff of a patch sent quoted-printable or base64, as git am does", () => {
    const diff =
      "diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c\n--- a/kernel/bpf/helpers.c\n+++ b/kernel/bpf/helpers.c\n";
    const qp = parseMail(
      `Subject: [PATCH] x\nContent-Transfer-Encoding: quoted-printable\n\ndiff --git a/kernel/bpf/helpers.c b/kernel/bpf/hel=\npers.c\n--- a/kernel/bpf/helpers.c\n+++ b/kernel/bpf/helpers.c\n`,
      "qp",
    );
    expect(decodedBody(qp)).toBe(diff);
    const b64 = parseMail(
      `Subject: [PATCH] x\nContent-Transfer-Encoding: base64\n\n${Buffer.from(diff).toString("base64")}\n`,
      "b64",
    );
    expect(decodedBody(b64)).toBe(diff);
    expect(selectSeries([qp], "qp.mbox").patches).toHaveLength(1);
    expect(selectSeries([b64], "b64.mbox").patches).toHaveLength(1);
  });

  it("keeps a diff's bytes as they came (a file that is not UTF-8) and decodes a raw UTF-8 subject", () => {
    const bytes = Buffer.concat([
      Buffer.from("From x Mon Sep 17 00:00:00 2001\nSubject: [PATCH] bpf: T\u00f8ke's fix\n\n", "utf8"),
      Buffer.from("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-\xe9\n+\xff\n", "latin1"),
    ]);
    const [mail] = splitMbox(bytes.toString("latin1"), "bytes.mbox");
    const s = selectSeries(mail ? [mail] : [], "bytes.mbox");
    expect(s.patches[0]?.title).toBe("bpf: T\u00f8ke's fix");
    expect(
      Buffer.from(s.patches[0]?.mail.raw ?? "", "latin1").includes(Buffer.from([0x2d, 0xe9, 0x0a])),
    ).toBe(true);
  });

  it("refuses a patch numbered beyond its series' total, naming it", () => {
    const [first] = mails.filter((m) => m.headers.get("subject")?.includes("3/3"));
    const beyond = first && {
      ...first,
      headers: new Map(first.headers).set("subject", "[PATCH bpf-next v2 4/3] extra"),
    };
    expect(() => selectSeries([...mails, ...(beyond ? [beyond] : [])], "s.mbox")).toThrow(
      /\[PATCH bpf-next v2 4\/3\] extra .* is numbered beyond the series' 3 patches/,
    );
  });

  it("says which patch is missing or doubled", () => {
    const without3 = mails.filter((m) => !m.headers.get("subject")?.includes("3/3"));
    expect(() => selectSeries(without3, "s.mbox")).toThrow("--series s.mbox: v2 patch 3/3 is missing");
    const twice = [...mails, mails[1] ?? mails[0]].filter((m) => m !== undefined);
    expect(() => selectSeries(twice, "s.mbox")).toThrow(/v2 patch 2\/3 is there 2 times/);
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
    expect(decodeWords("=?UTF-8?q?Toke_H=C3=B8iland-J=C3=B8rgensen?=")).toBe("Toke Høiland-Jørgensen");
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
