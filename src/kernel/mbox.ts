/**
 * Pure readers of a patch series as it comes from a mailing list: an mbox of mails (cover letter, patches,
 * replies, other versions), or the mails of `git format-patch`, one per file.
 */
import { KhilError } from "../common/errors.ts";

export interface Mail {
  /** Where it came from, for messages: `series.mbox:120` or `0003-bpf-x.patch`. */
  origin: string;
  headers: Map<string, string>;
  body: string;
  /** The whole mail as `git am` takes it. */
  raw: string;
}

/** What a subject's `[PATCH v6 bpf-next 05/11]` says. */
export interface PatchSubject {
  version: number;
  index: number;
  total: number;
  /** The subject without its tag: `bpf: Prevent pointer mismatch in bpf_timer_init`. */
  title: string;
}

export interface SeriesPatch extends PatchSubject {
  subject: string;
  messageId?: string;
  mail: Mail;
}

export interface Series {
  version: number;
  /** The 0/N mail: recorded, never applied. */
  cover?: { subject: string; messageId?: string };
  patches: SeriesPatch[];
  /** Versions present besides the chosen one, and the replies left out: said in the run's log. */
  ignored: string[];
}

const FROM_LINE = /^From \S+.*$/m;

/** Splits an mbox at its `From ` separator lines (mboxrd: `>From ` in a body is unescaped by git am). */
export function splitMbox(text: string, origin: string): Mail[] {
  const mails: Mail[] = [];
  // Archives served with CRLF line ends: the blank line before a `From ` separator is "\r" otherwise.
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  let start = -1;
  const flush = (end: number) => {
    if (start < 0) return;
    const raw = `${lines.slice(start, end).join("\n").replace(/\n*$/, "")}\n`;
    mails.push(parseMail(raw, `${origin}:${start + 1}`));
  };
  lines.forEach((l, i) => {
    if (FROM_LINE.test(l) && (i === 0 || lines[i - 1] === "")) {
      flush(i);
      start = i;
    }
  });
  flush(lines.length);
  return mails;
}

/** Headers (continuation lines unfolded, names lower-cased) and body of one mail. */
export function parseMail(raw: string, origin: string): Mail {
  const text = raw.replace(/\r\n/g, "\n");
  const split = text.indexOf("\n\n");
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 2);
  const headers = new Map<string, string>();
  let last: string | undefined;
  for (const l of head.split("\n")) {
    if (/^[ \t]/.test(l) && last) headers.set(last, `${headers.get(last)} ${l.trim()}`);
    else {
      const m = /^([!-9;-~]+):\s*(.*)$/.exec(l);
      if (!m?.[1]) continue;
      last = m[1].toLowerCase();
      if (!headers.has(last)) headers.set(last, m[2] ?? "");
    }
  }
  return { origin, headers, body, raw: text };
}

/**
 * A header of a mail read byte for byte (series.ts reads mails as latin1, one character per byte) as text:
 * its raw UTF-8 decoded. A string that is text already (it has characters past one byte) is kept.
 */
function asText(s: string): string {
  return [...s].some((c) => c.charCodeAt(0) > 0xff) ? s : Buffer.from(s, "latin1").toString("utf8");
}

/** RFC 2047 encoded words (`=?UTF-8?q?...?=`), as list archives write non-ASCII subjects. */
export function decodeWords(s: string): string {
  return s
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _charset: string, enc: string, data: string) =>
      enc.toLowerCase() === "b"
        ? Buffer.from(data, "base64").toString("utf8")
        : Buffer.from(
            data
              .replace(/_/g, " ")
              .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
            "latin1",
          ).toString("utf8"),
    );
}

/**
 * The `[PATCH ...]` tag of a subject; undefined for a reply or a mail that is no patch. Its words may be
 * separated by spaces or commas and the version glued to PATCH, as mail tools and patchwork write them:
 * `[PATCH v6 bpf-next 05/11]`, `[PATCHv2 1/3]`, `[PATCH bpf-next,v6,05/11]`, and patchwork's mbox downloads,
 * which drop the word PATCH: `[bpf-next,v6,05/11]`.
 */
export function parsePatchSubject(subject: string): PatchSubject | undefined {
  const m = /^\s*\[([^\]]*)\]\s*(.*)$/.exec(subject);
  if (!m?.[1]) return undefined;
  const words = m[1].split(/[\s,]+/).filter(Boolean);
  const numbered = words.map((w) => /^(\d+)\/(\d+)$/.exec(w)).find(Boolean);
  if (!words.some((w) => /^PATCH(v\d+)?$/i.test(w)) && !numbered) return undefined;
  const v = words.map((w) => /^(?:PATCH)?v(\d+)$/i.exec(w)?.[1]).find(Boolean);
  const version = Number(v ?? 1);
  const n = numbered;
  return {
    version,
    index: n ? Number(n[1]) : 1,
    total: n ? Number(n[2]) : 1,
    title: (m[2] ?? "").trim(),
  };
}

/**
 * A mail's body as `git am` reads it: list archives send patches quoted-printable or base64 (git mailinfo
 * decodes both), so the check for a diff looks at the decoded text. Only for that check: `git am` gets the
 * mail as it came.
 */
export function decodedBody(mail: Mail): string {
  const enc = (mail.headers.get("content-transfer-encoding") ?? "").trim().toLowerCase();
  if (enc === "base64") return Buffer.from(mail.body.replace(/\s+/g, ""), "base64").toString("latin1");
  if (enc === "quoted-printable")
    return mail.body
      .replace(/=\r?\n/g, "")
      .replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return mail.body;
}

function hasDiff(body: string): boolean {
  return /^diff --git /m.test(body) || /^--- \S.*\n\+\+\+ \S/m.test(body);
}

/**
 * The patches of one version of the series in order, as mail tools pick them: replies (`Re:`) and mails
 * without a `[PATCH]` tag left out, the latest version unless `version` names one, each of 1..N present
 * once. Bad input is a KhilError naming what is missing or doubled.
 */
export function selectSeries(mails: readonly Mail[], source: string, version?: number): Series {
  const read = mails.map((mail) => {
    const subject = decodeWords(asText(mail.headers.get("subject") ?? ""));
    const tag = /^\s*(re|aw|fwd?):/i.test(subject) ? undefined : parsePatchSubject(subject);
    const messageId = mail.headers.get("message-id")?.replace(/^<|>$/g, "");
    return { mail, subject, tag, ...(messageId ? { messageId } : {}) };
  });
  const tagged: SeriesPatch[] = read.flatMap((r) => (r.tag ? [{ ...r, ...r.tag }] : []));
  const versions = [...new Set(tagged.map((p) => p.version))].sort((a, b) => a - b);
  if (!versions.length) throw new KhilError(`--series ${source}: no mail with a [PATCH] subject in it`);
  const chosen = version ?? versions[versions.length - 1];
  if (chosen === undefined || !versions.includes(chosen))
    throw new KhilError(
      `--series-version ${version}: ${source} has version${versions.length > 1 ? "s" : ""} ${versions.map((v) => `v${v}`).join(", ")}`,
    );
  const ignored = read.flatMap((r) =>
    !r.tag
      ? [`${r.mail.origin}: ${r.subject || "(no subject)"} (not a patch)`]
      : r.tag.version !== chosen
        ? [`${r.mail.origin}: ${r.subject} (version ${r.tag.version})`]
        : [],
  );
  const mine = tagged.filter((p) => p.version === chosen);
  const totals = [...new Set(mine.map((p) => p.total))];
  if (totals.length !== 1 || totals[0] === undefined)
    throw new KhilError(
      `--series ${source}: v${chosen} mails disagree on the number of patches (${totals.map((t) => `/${t}`).join(", ")})`,
    );
  const total = totals[0];
  const beyond = mine.find((p) => p.index > total);
  if (beyond)
    throw new KhilError(
      `--series ${source}: ${beyond.subject} (${beyond.mail.origin}) is numbered beyond the series' ${total} patches`,
    );
  const cover = mine.find((p) => p.index === 0);
  const patches: SeriesPatch[] = [];
  for (let i = 1; i <= total; i++) {
    const at = mine.filter((p) => p.index === i);
    const first = at[0];
    if (!first) throw new KhilError(`--series ${source}: v${chosen} patch ${i}/${total} is missing`);
    if (at.length > 1)
      throw new KhilError(
        `--series ${source}: v${chosen} patch ${i}/${total} is there ${at.length} times (${at.map((p) => p.mail.origin).join(", ")})`,
      );
    if (!hasDiff(decodedBody(first.mail)))
      throw new KhilError(`--series ${source}: ${first.subject} (${first.mail.origin}) holds no diff`);
    patches.push(first);
  }
  return {
    version: chosen,
    ...(cover
      ? { cover: { subject: cover.subject, ...(cover.messageId ? { messageId: cover.messageId } : {}) } }
      : {}),
    patches,
    ignored,
  };
}

/**
 * What `git am` or `git apply` says when a patch does not apply: which patch (its number in the run), the
 * files it failed in, and the hunks (`file:line` where each failing hunk starts).
 */
export function amFailure(output: string): { patchNo?: number; files: string[]; hunks: string[] } {
  const patchNo = /^Patch failed at (\d+)/m.exec(output)?.[1];
  const all = (re: RegExp) => [...new Set([...output.matchAll(re)].map((m) => m[1] ?? ""))].filter(Boolean);
  const hunks = all(/^error: patch failed: (\S+:\d+)$/gm);
  const files = [
    ...new Set([
      ...hunks.map((h) => h.replace(/:\d+$/, "")),
      ...all(/^CONFLICT \([^)]*\): Merge conflict in (\S+)$/gm),
      ...all(
        /^error: (\S+): (?:patch does not apply|does not exist in index|already exists in (?:index|working directory))$/gm,
      ),
    ]),
  ];
  return { ...(patchNo ? { patchNo: Number(patchNo) } : {}), files, hunks };
}
