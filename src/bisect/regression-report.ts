/**
 * `report.txt`: a bisect's result written as kernel people send a regression report to a list — plain text,
 * 72 columns, the culprit in the subject, what failed at it and at its parent, the kernel's report, how to
 * reproduce, and the lines the process expects (Reported-by:/Closes: for the user to fill, regzbot's
 * `#regzbot introduced:` so that the regression tracker follows it).
 */
import { type SplatRecord, splatWhen } from "../report/results.ts";
import type { BisectReport } from "./bisect.ts";

const WIDTH = 72;

/** Prose folded at word boundaries to 72 columns, each line after `indent`; a longer word is split. */
export function fold(text: string, indent = ""): string[] {
  const room = WIDTH - indent.length;
  const words = text
    .split(/\s+/)
    .filter(Boolean)
    .flatMap((w) => (w.length <= room ? [w] : (w.match(new RegExp(`.{1,${room}}`, "g")) ?? [w])));
  const out: string[] = [];
  let line = "";
  for (const word of words) {
    if (line && line.length + 1 + word.length > room) {
      out.push(indent + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(indent + line);
  return out;
}

/** Output kept as it is, its long lines wrapped to 72 columns (continued after `+ `), and its last lines only. */
function verbatim(text: string, indent = "  ", lines = 40): string[] {
  const all = text.replace(/\r/g, "").split("\n");
  const room = WIDTH - indent.length;
  const out = all.slice(-lines).flatMap((raw) => {
    const l = raw.replace(/\t/g, "  ");
    const parts = [l.slice(0, room)];
    for (let at = room; at < l.length; at += room - 2) parts.push(`+ ${l.slice(at, at + room - 2)}`);
    return parts.map((p) => indent + p);
  });
  return all.length > lines ? [`${indent}[... ${all.length - lines} lines before]`, ...out] : out;
}

/**
 * What of a test's log tells how it failed: its failing lines (test_progs' `:FAIL:`, KTAP's `not ok`, an
 * error) with two lines around each; the whole log where none says so.
 */
export function failureLines(log: string): string {
  const lines = log.split("\n");
  const hit = lines.flatMap((l, i) => (/:FAIL:|\bnot ok\b|\bFAIL\b|\berror\b/i.test(l) ? [i] : []));
  if (!hit.length) return log;
  const keep = new Set(
    hit.flatMap((i) => [i - 2, i - 1, i, i + 1, i + 2]).filter((i) => i >= 0 && i < lines.length),
  );
  const out: string[] = [];
  let last = -1;
  for (const i of [...keep].sort((a, b) => a - b)) {
    if (last >= 0 && i > last + 1) out.push("[...]");
    out.push(lines[i] ?? "");
    last = i;
  }
  return out.join("\n");
}

/** A shell word that pastes back as itself. */
export function shellWord(w: string): string {
  // `=` or `~` leading a word is expanded by some shells (zsh's =cmd, ~user): quoted there too.
  return /^[\w@%+:,./-][\w@%+=:,./-]*$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * A command as lines that paste back as one: backslash-continued within 72 columns where words allow (a
 * word longer than a line stays whole: the command must paste back as the same words).
 */
export function shellLines(words: readonly string[], indent = "  "): string[] {
  const out: string[] = [];
  let line = "";
  for (const w of words.map(shellWord)) {
    if (line && indent.length + line.length + 1 + w.length + 2 > WIDTH) {
      out.push(`${indent}${line} \\`);
      line = `  ${w}`;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(indent + line);
  return out;
}

export interface ReportInput {
  report: BisectReport;
  suite: string;
  /** The command that ran this bisect, word by word. */
  command: string[];
  /** The kernel's reports at the first bad commit (its step's results.json). */
  splats: SplatRecord[];
  /**
   * For `--each-patch`: the first bad one is a patch of a series, known on the list by its subject and
   * Message-ID (its commit exists only in khil's work tree); the patches before it are not a bisect's ends.
   */
  patch?: { index: number; total: number; messageId?: string };
}

/** The report's text, or undefined when the bisect named no first bad commit. */
export function regressionReport(i: ReportInput): string | undefined {
  const r = i.report;
  const first = r.firstBad;
  if (!first) return undefined;
  const short = (c: string) => c.slice(0, 12);
  const bad = r.steps.find((s) => s.commit === first.commit);
  const failing = (bad?.tests ?? []).filter((t) => t.verdict !== "pass");
  // The same bug once, however many runs (--repeat) reported it.
  const splats = [...new Map(i.splats.map((s) => [s.fingerprint ?? s.title, s])).values()];
  const named = failing.length
    ? failing.map((t) => t.name)
    : [...new Set(splats.map((s) => `a kernel ${s.kind}`))];
  const what = named.length
    ? `${named.slice(0, 2).join(", ")}${named.length > 2 ? ` and ${named.length - 2} more` : ""}`
    : "the selected tests";
  const one = named.length === 1;
  const p = i.patch;
  const where = p ? `patch ${p.index}/${p.total} of the series` : "this commit";
  const lines: string[] = [
    `Subject: [REGRESSION] ${r.arch}: ${what} ${failing.length ? (one ? "fails" : "fail") : "since"}${failing.length ? " since" : ""} "${first.subject}"`,
    "",
    "Hello,",
    "",
    ...fold(
      `khil, a kernel test harness that boots the kernel under QEMU and runs its selftests, found ${failing.length ? `that ${what} ${one ? "fails" : "fail"}` : what} on ${r.arch} since ${where} (suite ${i.suite}):`,
    ),
    "",
    ...(p
      ? [
          ...fold(`first bad patch: ${p.index}/${p.total} "${first.subject}"`, "  "),
          // Whole, however long: it is what finds the patch in the list's archive.
          ...(p.messageId ? [`    Message-ID: <${p.messageId.replace(/^<|>$/g, "")}>`] : []),
          ...fold(
            r.parent
              ? `the patch before it: ${r.parent.verdict} (${r.parent.reason})`
              : "it is the series' first patch: the base it applies to was not tested",
            "  ",
          ),
        ]
      : [
          ...fold(`first bad commit: ${short(first.commit)} ("${first.subject}")`, "  "),
          ...(r.parent
            ? fold(`its parent: ${short(r.parent.commit)} (${r.parent.verdict}: ${r.parent.reason})`, "  ")
            : []),
          ...fold(`bisected between ${short(r.good)} (good) and ${short(r.bad)} (bad)`, "  "),
          ...fold(`in ${r.stepCount} steps, ${r.skips} skipped; tree ${r.tree}`, "  "),
        ]),
    "",
  ];
  const at = p ? `patch ${p.index}` : short(first.commit);
  const before = p ? "the patch before it" : `the parent ${r.parent ? short(r.parent.commit) : "?"}`;
  if (bad) lines.push(...fold(`At ${at}: ${bad.reason}`), "");
  for (const t of failing) {
    lines.push(...fold(`--- ${t.name} at ${at}: ${t.verdict}`));
    if (t.log) lines.push(...verbatim(failureLines(t.log)));
    const then = r.parent?.tests.find((x) => x.name === t.name);
    lines.push(...fold(`--- ${t.name} at ${before}: ${then?.verdict ?? "no result"}`), "");
  }
  for (const s of splats) {
    lines.push(
      ...fold(
        `The kernel reported, during ${splatWhen(s)}${s.fingerprint ? ` (fingerprint ${s.fingerprint})` : ""}${s.decoded ? ", decoded by scripts/decode_stacktrace.sh" : ""}:`,
      ),
      ...verbatim(s.decoded ?? s.excerpt, "  ", 60),
      "",
    );
  }
  lines.push(
    "To reproduce, in a checkout of khil:",
    "",
    ...shellLines(i.command),
    "",
    ...fold(
      p
        ? "Please fill in who reported it and where:"
        : "Please fill in who reported it and where, then keep the regzbot line so that the regression tracker follows it:",
    ),
    "",
    "Reported-by: NAME <EMAIL>",
    "Closes: URL-OF-THE-REPORT",
    "",
    // regzbot tracks commits that exist upstream: a patch on the list is not one yet.
    ...(p ? [] : [`#regzbot introduced: ${short(first.commit)}`, ""]),
  );
  return lines.join("\n");
}
