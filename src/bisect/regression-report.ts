/**
 * `report.txt`: a bisect's result written as kernel people send a regression report to a list — plain text,
 * 72 columns, the culprit in the subject, what failed at it and at its parent, the kernel's report, how to
 * reproduce, and the lines the process expects (Reported-by:/Closes: for the user to fill, regzbot's
 * `#regzbot introduced:` so that the regression tracker follows it).
 */
import type { SplatRecord } from "../report/results.ts";
import type { BisectReport } from "./bisect.ts";

const WIDTH = 72;

/** Prose folded at word boundaries to 72 columns, each line after `indent`. */
export function fold(text: string, indent = ""): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > WIDTH) {
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

/** A shell word that pastes back as itself. */
export function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** A command as lines that paste back as one: backslash-continued within 72 columns where words allow. */
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
}

/** The report's text, or undefined when the bisect named no first bad commit. */
export function regressionReport(i: ReportInput): string | undefined {
  const r = i.report;
  const first = r.firstBad;
  if (!first) return undefined;
  const short = (c: string) => c.slice(0, 12);
  const bad = r.steps.find((s) => s.commit === first.commit);
  const failing = (bad?.tests ?? []).filter((t) => t.verdict !== "pass");
  const what = failing.length ? failing.map((t) => t.name).join(", ") : "the selected tests";
  const lines: string[] = [
    `Subject: [REGRESSION] ${r.arch}: ${what} fail${failing.length === 1 ? "s" : ""} since "${first.subject}"`,
    "",
    "Hello,",
    "",
    ...fold(
      `khil, a kernel test harness that boots the kernel under QEMU and runs its selftests, found that ${what} ${failing.length === 1 ? "fails" : "fail"} on ${r.arch} since this commit (suite ${i.suite}):`,
    ),
    "",
    ...fold(`first bad commit: ${short(first.commit)} ("${first.subject}")`, "  "),
    ...(r.parent
      ? [`  its parent:       ${short(r.parent.commit)} (${r.parent.verdict}: ${r.parent.reason})`]
      : []),
    `  bisected between: ${short(r.good)} (good) and ${short(r.bad)} (bad)`,
    `  in ${r.stepCount} steps, ${r.skips} skipped; tree ${r.tree}`,
    "",
  ];
  if (bad) lines.push(...fold(`At ${short(first.commit)}: ${bad.reason}`), "");
  for (const t of failing) {
    lines.push(`--- ${t.name} at ${short(first.commit)}: ${t.verdict}`);
    if (t.log) lines.push(...verbatim(t.log));
    const before = r.parent?.tests.find((p) => p.name === t.name);
    lines.push(
      `--- ${t.name} at the parent ${r.parent ? short(r.parent.commit) : "?"}: ${before?.verdict ?? "no result"}`,
      "",
    );
  }
  for (const s of i.splats) {
    lines.push(
      ...fold(
        `The kernel reported, during ${s.during}${s.fingerprint ? ` (fingerprint ${s.fingerprint})` : ""}:`,
      ),
      ...verbatim(s.excerpt, "  ", 60),
      "",
    );
  }
  lines.push(
    "To reproduce, in a checkout of khil:",
    "",
    ...shellLines(i.command),
    "",
    ...fold(
      "Please fill in who reported it and where, then keep the regzbot line so that the regression tracker follows it:",
    ),
    "",
    "Reported-by: NAME <EMAIL>",
    "Closes: URL-OF-THE-REPORT",
    "",
    `#regzbot introduced: ${short(first.commit)}`,
    "",
  );
  return lines.join("\n");
}
