import { type Results, testName } from "./results.ts";

function xmlEscape(s: string): string {
  return (
    s
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      // biome-ignore lint/suspicious/noControlCharactersInRegex: XML 1.0 forbids these characters
      .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, "")
  );
}

/** JUnit XML: one testsuite per arch, one testcase per test and subtest. */
export function toJunit(r: Results): string {
  const suites = r.runs.map((run) => {
    const cases = run.tests.map((t) => {
      const attrs = `classname="${xmlEscape(`${run.arch}.${run.suite}`)}" name="${xmlEscape(testName(t))}" time="${((t.durationMs ?? 0) / 1000).toFixed(3)}"`;
      if (t.verdict === "pass") return `    <testcase ${attrs}/>`;
      if (t.verdict === "skip")
        return `    <testcase ${attrs}><skipped message="${xmlEscape(t.reason ?? "")}"/></testcase>`;
      // JUnit has no flaky: it passed in the end, and its output says how it failed first.
      if (t.verdict === "flaky")
        return `    <testcase ${attrs}><system-out>${xmlEscape(`flaky: ${t.reason ?? ""}\n${t.log ?? ""}`)}</system-out></testcase>`;
      const tag = t.verdict === "error" ? "error" : "failure";
      return `    <testcase ${attrs}><${tag} message="${xmlEscape(t.reason ?? t.verdict)}">${xmlEscape(t.log ?? "")}</${tag}></testcase>`;
    });
    if (run.error)
      cases.push(
        `    <testcase classname="${xmlEscape(`${run.arch}.${run.suite}`)}" name="${xmlEscape(run.error.stage)}"><error message="${xmlEscape(run.error.message)}"/></testcase>`,
      );
    const count = (v: string) => run.tests.filter((t) => t.verdict === v).length;
    return [
      `  <testsuite name="${xmlEscape(`${run.suite} (${run.arch})`)}" tests="${cases.length}" failures="${count("fail")}" errors="${count("error") + (run.error ? 1 : 0)}" skipped="${count("skip")}">`,
      ...cases,
      "  </testsuite>",
    ].join("\n");
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="khil">\n${suites.join("\n")}\n</testsuites>\n`;
}
