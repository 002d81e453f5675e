/**
 * Pure readers of a patch series as it comes from a mailing list: an mbox of mails (cover letter, patches,
 * replies, other versions), or the mails of `git format-patch`, one per file.
 */
import { KhilError } from "../common/errors.ts";

export interface Mail {
  /** Where it came from, for messages: `series.mbox:120` or `0003-bpf-x.patch:1`. */
  origin: string;
  /** As `git mailinfo -k` decoded it, tag and all. */
  subject: string;
  messageId?: string;
  inReplyTo?: string;
  /** The commit message part, decoded (a reply's whole text). */
  message: string;
  /** The diff `git mailinfo` found in the mail, byte for byte: empty when there is none. */
  diff: Buffer;
  /** The whole mail as `git mailsplit` cut it, which `git am` takes. */
  raw: Buffer;
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
  /**
   * What reviewers answered with (`Acked-by: A <a@x>`) in replies to this patch or to the cover letter, and
   * that its own message lacks: added to its commit, as `b4 am` does.
   */
  trailers: string[];
}

export interface Series {
  version: number;
  /** The 0/N mail: recorded, never applied. */
  cover?: { subject: string; messageId?: string };
  patches: SeriesPatch[];
  /** Versions present besides the chosen one, and the replies left out: said in the run's log. */
  ignored: string[];
}

/**
 * One header of a mail's head (its text up to the first blank line), continuation lines unfolded; the first
 * if it is there more than once. For the plain ASCII headers `git mailinfo` does not print (Message-Id).
 */
export function headerValue(mail: string, name: string): string | undefined {
  const end = mail.search(/\r?\n\r?\n/);
  const lines = (end < 0 ? mail : mail.slice(0, end)).split(/\r?\n/);
  const at = lines.findIndex((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (at < 0) return undefined;
  const folded = [lines[at]?.slice(name.length + 1) ?? ""];
  for (const l of lines.slice(at + 1)) {
    if (!/^[ \t]/.test(l)) break;
    folded.push(l);
  }
  return folded
    .map((l) => l.trim())
    .filter(Boolean)
    .join(" ");
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
 * The patches of one version of the series in order, as mail tools pick them: replies (`Re:`) and mails
 * without a `[PATCH]` tag left out, the latest version unless `version` names one, each of 1..N present
 * once. Bad input is a KhilError naming what is missing or doubled.
 */
export function selectSeries(mails: readonly Mail[], source: string, version?: number): Series {
  const read = mails.map((mail) => {
    const { subject, messageId } = mail;
    const tag = /^\s*(re|aw|fwd?):/i.test(subject) ? undefined : parsePatchSubject(subject);
    return { mail, subject, tag, ...(messageId ? { messageId } : {}) };
  });
  const tagged: SeriesPatch[] = read.flatMap((r) => (r.tag ? [{ ...r, ...r.tag, trailers: [] }] : []));
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
    if (!first.mail.diff.length)
      throw new KhilError(`--series ${source}: ${first.subject} (${first.mail.origin}) holds no diff`);
    patches.push(first);
  }
  const replies = read.filter((r) => !r.tag).map((r) => r.mail);
  for (const p of patches) p.trailers = replyTrailers(p, cover, replies);
  return {
    version: chosen,
    ...(cover
      ? { cover: { subject: cover.subject, ...(cover.messageId ? { messageId: cover.messageId } : {}) } }
      : {}),
    patches,
    ignored,
  };
}

/** A person trailer on a line of its own, as reviewers answer: `Reviewed-by: A Reviewer <r@example.org>`. */
const TRAILER = /^([A-Z][a-z]*(?:-[A-Za-z]+)*-by): *(\S.*<[^<>\s]+@[^<>\s]+>)\s*$/;

/**
 * The trailers of the replies to `patch` (by In-Reply-To) and to the cover letter (they hold for every
 * patch), outside quoted text, less those the patch already carries; in the order they came.
 */
export function replyTrailers(
  patch: SeriesPatch,
  cover: SeriesPatch | undefined,
  replies: readonly Mail[],
): string[] {
  const own = new Set(patch.mail.message.split("\n").map((l) => l.trim()));
  const to = new Set([patch.messageId, cover?.messageId].filter(Boolean));
  const found = replies
    .filter((r) => r.inReplyTo && to.has(r.inReplyTo))
    .flatMap((r) =>
      r.message.split("\n").flatMap((l) => {
        const m = TRAILER.exec(l.trim());
        return m && !l.startsWith(">") ? [`${m[1]}: ${m[2]}`] : [];
      }),
    );
  return [...new Set(found)].filter((t) => !own.has(t));
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
