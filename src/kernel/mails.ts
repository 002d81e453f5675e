/**
 * The mails of `--series`, read by git's own mail tools, as `git am` reads them: `git mailsplit` cuts an mbox
 * (CRLF line ends, lore's mboxrd escaping), `git mailinfo` decodes each mail's headers (RFC 2047, charsets)
 * and body (quoted-printable, base64, MIME parts) and extracts its diff, bytes kept as bytes. What those
 * tools do not say (which mails make the series) is mbox.ts's.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { execa } from "execa";
import { KhilError } from "../common/errors.ts";
import { isGitTree } from "./git.ts";
import { headerValue, type Mail } from "./mbox.ts";

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
      const each = await Promise.all(
        files.map((f) => readMbox(readFileSync(join(spec, f)), `${spec}/${f}`, f)),
      );
      return each.flat();
    }
    const data = readFileSync(spec);
    return readMbox(spec.endsWith(".gz") ? gunzipSync(data) : data, spec, basename(spec));
  }
  if (RANGE.test(spec)) {
    if (!tree || !(await isGitTree(tree)))
      throw new KhilError(`--series ${spec}: a range needs --tree PATH of a git repository to take it from`);
    const r = await execa("git", ["-C", tree, "format-patch", "--stdout", "--numbered", spec], {
      reject: false,
      maxBuffer: 1 << 30,
      encoding: "buffer",
    });
    if (r.exitCode !== 0)
      throw new KhilError(`--series ${spec}: ${Buffer.from(r.stderr).toString().trim().split("\n").pop()}`);
    if (!r.stdout.length) throw new KhilError(`--series ${spec}: no commits in that range of ${tree}`);
    return readMbox(Buffer.from(r.stdout), spec, spec);
  }
  throw new KhilError(`--series ${spec}: no such file or directory, nor a BASE..TIP range`);
}

/** An mbox's first line as `git mailsplit` wants one: a single `.eml` has none, and gets git's own. */
const FROM = "From khil Mon Sep 17 00:00:00 2001\n";

/**
 * The mails of one mbox (or of one mail), each with the line it starts at in `origin`. An input git cannot
 * read as mail is refused with git's own words.
 */
export async function readMbox(data: Buffer, source: string, origin: string): Promise<Mail[]> {
  const bare = !data.subarray(0, 5).equals(Buffer.from("From "));
  const input = bare ? Buffer.concat([Buffer.from(FROM), data]) : data;
  const dir = mkdtempSync(join(tmpdir(), "khil-mails-"));
  try {
    // lore serves its archives as mboxrd (a body's `From ` escaped as `>From `) and says so on each separator.
    const rd = /^From mboxrd@/.test(input.subarray(0, 80).toString("latin1")) ? ["--mboxrd"] : [];
    const split = await execa("git", ["mailsplit", ...rd, `-o${dir}`], { input, reject: false });
    if (split.exitCode !== 0)
      throw new KhilError(
        `--series ${source}: git mailsplit cannot read it: ${split.stderr.trim() || "no mails"}`,
      );
    const pieces = readdirSync(dir)
      .filter((f) => /^\d+$/.test(f))
      .sort();
    // mailsplit keeps every line of the input in its pieces, in order: a piece starts where those before end.
    let line = bare ? 0 : 1;
    const mails: Mail[] = [];
    for (const p of pieces) {
      const raw = readFileSync(join(dir, p));
      mails.push(await mailinfo(raw, `${origin}:${Math.max(line, 1)}`, dir));
      line += lineCount(raw);
    }
    return mails;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function lineCount(b: Buffer): number {
  let n = 0;
  for (const c of b) if (c === 0x0a) n++;
  return n + (b.length && b[b.length - 1] !== 0x0a ? 1 : 0);
}

/** One mail through `git mailinfo -k`: its subject whole (tag kept), its message and its diff decoded. */
async function mailinfo(raw: Buffer, origin: string, dir: string): Promise<Mail> {
  const msg = join(dir, "msg");
  const patch = join(dir, "patch");
  const r = await execa("git", ["mailinfo", "-k", "--quoted-cr=strip", "--encoding=UTF-8", msg, patch], {
    input: raw,
    reject: false,
  });
  if (r.exitCode !== 0)
    throw new KhilError(`--series ${origin}: git mailinfo cannot read this mail: ${r.stderr.trim()}`);
  const info = (name: string) => new RegExp(`^${name}: (.*)$`, "m").exec(r.stdout)?.[1]?.trim() ?? "";
  // Message-Id and In-Reply-To, which mailinfo does not print, are plain ASCII headers.
  const head = raw.toString("latin1");
  const messageId = headerValue(head, "message-id")?.replace(/^<|>$/g, "");
  const inReplyTo = headerValue(head, "in-reply-to")?.replace(/^<|>$/g, "");
  return {
    origin,
    subject: info("Subject"),
    ...(messageId ? { messageId } : {}),
    ...(inReplyTo ? { inReplyTo } : {}),
    message: readFileSync(msg, "utf8"),
    diff: readFileSync(patch),
    raw,
  };
}
