import { excerpt, type ParsedRun, type ParsedTest } from "./types.ts";

const RESULT = /^(\s*)(not ok|ok) (\d+)(?: -)?(?: ([^#]*?))?\s*(?:#\s*(SKIP|TODO|XFAIL)\b:?\s*(.*))?$/i;
const PLAN = /^\s*1\.\.(\d+)/;

/** KTAP and the kselftest TAP it grew from: nested results are indented and precede their parent. */
export function parseKtap(text: string): ParsedRun {
  const tests: ParsedTest[] = [];
  const problems: string[] = [];
  let logLines: string[] = [];
  let pendingChildren: ParsedTest[] = [];
  let planned: number | undefined;
  let topCount = 0;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const p = PLAN.exec(line);
    if (p && !/^\s/.test(line)) planned = Number(p[1]);
    const m = RESULT.exec(line);
    if (!m) {
      if (!/^\s*(KTAP|TAP) version/.test(line) && !p) logLines.push(line.replace(/^\s*# ?/, ""));
      continue;
    }
    const [, indent = "", status = "", , name = "", directive, reason] = m;
    const skip = directive?.toUpperCase() === "SKIP";
    const verdict = skip ? "skip" : status.toLowerCase() === "ok" || directive ? "pass" : "fail";
    const t: ParsedTest = {
      test: name.trim() || `#${m[3]}`,
      verdict,
      log: verdict === "pass" ? "" : excerpt(logLines),
    };
    if (skip && reason) t.reason = reason.trim();
    logLines = [];
    if (indent.length > 0) {
      pendingChildren.push(t);
      continue;
    }
    topCount++;
    for (const c of pendingChildren) tests.push({ ...c, subtest: c.test, test: t.test });
    pendingChildren = [];
    tests.push(t);
  }
  if (planned !== undefined && planned !== topCount)
    problems.push(`plan says 1..${planned}, ${topCount} results were printed`);
  return { tests, problems };
}
