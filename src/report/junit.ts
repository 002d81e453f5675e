import type { SeriesRecord } from "../kernel/tree.ts";
import { type FaultClass, runFault } from "./fault.ts";
import { type ArchRun, type Results, splatWhen, testName } from "./results.ts";
import { seriesLines } from "./series.ts";
import { archStatus } from "./verdict.ts";

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

/**
 * The run's own findings as one test case, `kernel`: a <failure> per splat, per problem and per harness
 * fault, so that a CI test reporter goes red on a WARNING alone, or on a test_progs that crashed.
 */
function kernelCase(run: ArchRun, classname: string): string | undefined {
  const failures = [
    ...run.splats.map(
      (s) =>
        `<failure type="kernel ${xmlEscape(s.kind)}" message="${xmlEscape(`${s.title} (during ${splatWhen(s)}${s.fingerprint ? `, fingerprint ${s.fingerprint}` : ""})`)}">${xmlEscape(s.decoded ?? s.excerpt)}</failure>`,
    ),
    ...run.problems.map((p) => `<failure type="problem" message="${xmlEscape(p)}"/>`),
    ...(run.harness ?? []).map((h) => `<failure type="harness fault" message="${xmlEscape(h)}"/>`),
  ];
  if (failures.length === 0) return undefined;
  return `    <testcase classname="${classname}" name="kernel">\n      ${failures.join("\n      ")}\n    </testcase>`;
}

/**
 * The run's fault class (fault.ts) and its series as testsuite properties, the way JUnit carries what a suite
 * ran on and what it found.
 */
function properties(fault: FaultClass | undefined, s: SeriesRecord | undefined): string[] {
  const prop = (name: string, value: string) =>
    `      <property name="${name}" value="${xmlEscape(value)}"/>`;
  const props = fault ? [prop("fault", fault)] : [];
  if (s) {
    const [title, ...patches] = seriesLines(s);
    props.push(prop("series", title ?? ""), ...patches.map((p, i) => prop(`series.patch.${i + 1}`, p)));
  }
  return props.length ? ["    <properties>", ...props, "    </properties>"] : [];
}

/** JUnit XML: one testsuite per arch, one testcase per test and subtest, and the `kernel` case. */
export function toJunit(r: Results): string {
  const suites = r.runs.map((run) => {
    const classname = xmlEscape(`${run.arch}.${run.suite}`);
    const cases = run.tests.map((t) => {
      const attrs = `classname="${classname}" name="${xmlEscape(testName(t))}" time="${((t.durationMs ?? 0) / 1000).toFixed(3)}"`;
      if (t.verdict === "pass") return `    <testcase ${attrs}/>`;
      if (t.verdict === "skip")
        return `    <testcase ${attrs}><skipped message="${xmlEscape(t.reason ?? "")}"/></testcase>`;
      // A known flake in quarantine does not fail the run: a reporter shows it as passed, its output says why.
      if (t.history?.quarantined)
        return `    <testcase ${attrs}><system-out>${xmlEscape(`${t.verdict}, not counted: ${t.history.text}\n${t.reason ?? ""}\n${t.log ?? ""}`)}</system-out></testcase>`;
      // A test selected and never run fails the run (verdict.ts): a reporter must show it red, not skipped.
      if (t.verdict === "notrun")
        return `    <testcase ${attrs}><failure type="notrun" message="${xmlEscape(`not run: ${t.reason ?? ""}`)}"/></testcase>`;
      // JUnit has no flaky: it passed in the end, and its output says how it failed first.
      if (t.verdict === "flaky")
        return `    <testcase ${attrs}><system-out>${xmlEscape(`flaky: ${t.reason ?? ""}\n${t.log ?? ""}`)}</system-out></testcase>`;
      const tag = t.verdict === "error" ? "error" : "failure";
      return `    <testcase ${attrs}><${tag} message="${xmlEscape(t.reason ?? t.verdict)}">${xmlEscape(t.log ?? "")}</${tag}></testcase>`;
    });
    const kernel = kernelCase(run, classname);
    if (kernel) cases.push(kernel);
    if (run.interrupted)
      cases.push(
        `    <testcase classname="${classname}" name="interrupted"><error message="${xmlEscape(run.interrupted)}"/></testcase>`,
      );
    if (run.error)
      cases.push(
        `    <testcase classname="${classname}" name="${xmlEscape(run.error.stage)}"><error message="${xmlEscape(run.error.message)}"/></testcase>`,
      );
    // An ERROR with no stage failing and nothing cut short: no test at all gave a result.
    const noResult = !run.error && !run.interrupted && archStatus(run) === "error";
    if (noResult)
      cases.push(
        `    <testcase classname="${classname}" name="results"><error message="no selected test gave a result"/></testcase>`,
      );
    const count = (...v: string[]) =>
      run.tests.filter((t) => v.includes(t.verdict) && !t.history?.quarantined).length;
    const errors = count("error") + [run.error, run.interrupted, noResult].filter(Boolean).length;
    return [
      `  <testsuite name="${xmlEscape(`${run.suite} (${run.arch})`)}" tests="${cases.length}" failures="${count("fail", "notrun") + (kernel ? 1 : 0)}" errors="${errors}" skipped="${count("skip")}">`,
      ...properties(runFault(run), run.series),
      ...cases,
      "  </testsuite>",
    ].join("\n");
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="khil">\n${suites.join("\n")}\n</testsuites>\n`;
}
