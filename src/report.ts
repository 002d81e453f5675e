import type { ArchRun, Results, TestRecord } from "./results.ts";

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

function caseName(t: TestRecord): string {
  return t.subtest ? `${t.test}/${t.subtest}` : t.test;
}

/** JUnit XML: one testsuite per arch, one testcase per test and subtest. */
export function toJunit(r: Results): string {
  const suites = r.runs.map((run) => {
    const cases = run.tests.map((t) => {
      const attrs = `classname="${xmlEscape(`${run.arch}.${run.suite}`)}" name="${xmlEscape(caseName(t))}" time="${((t.durationMs ?? 0) / 1000).toFixed(3)}"`;
      if (t.verdict === "pass") return `    <testcase ${attrs}/>`;
      if (t.verdict === "skip")
        return `    <testcase ${attrs}><skipped message="${xmlEscape(t.reason ?? "")}"/></testcase>`;
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

function header(run: ArchRun): string {
  const g = run.guest;
  if (!g)
    return `${run.arch}: ${run.status}${run.error ? ` (${run.error.stage}: ${run.error.message.split("\n")[0]})` : ""}`;
  const jit = g.bpfJitEnable === "1" ? "JIT on" : `JIT OFF (bpf_jit_enable=${g.bpfJitEnable})`;
  const res = g.hrtimerResolutionNs === null ? "?" : `${g.hrtimerResolutionNs} ns`;
  return `${run.arch}: ${g.kernelRelease} (config ${g.configHash}), ${g.accel}, ${g.cpus} CPUs, ${jit}, clocksource ${g.clocksource}, hrtimer resolution ${res}, boot ${g.bootSeconds.toFixed(1)} s`;
}

const MARK: Record<string, string> = { pass: "PASS", fail: "FAIL", skip: "SKIP", error: "ERROR" };

/** The terminal summary: a header per arch from the guest's own facts, then a line per test. */
export function summaryTable(r: Results): string {
  const out: string[] = [];
  for (const run of r.runs) {
    out.push(header(run));
    const width = Math.max(10, ...run.tests.map((t) => caseName(t).length));
    for (const t of run.tests) {
      const why = t.verdict === "skip" && t.reason ? `  (${t.reason})` : "";
      out.push(`  ${caseName(t).padEnd(width)}  ${MARK[t.verdict]}${why}`);
    }
    for (const s of run.splats) out.push(`  kernel ${s.kind} during ${s.during} (${s.source}): ${s.title}`);
    for (const p of run.problems) out.push(`  problem: ${p}`);
    if (run.error) out.push(`  ${run.error.stage}: ${run.error.message}`);
    const n = (v: string) => run.tests.filter((t) => t.verdict === v).length;
    out.push(
      `  => ${run.status.toUpperCase()}: ${n("pass")} passed, ${n("fail")} failed, ${n("skip")} skipped`,
    );
  }
  return out.join("\n");
}
