import { findings } from "./fault.ts";
import { failing, type Results, testName } from "./results.ts";

/** GitHub Actions workflow commands marking each failure in the job's annotations. */
export function githubAnnotations(r: Results): string[] {
  const esc = (s: string) => s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
  const out: string[] = [];
  for (const run of r.runs) {
    const where = run.cell ?? run.arch;
    for (const t of run.tests.filter(failing))
      out.push(
        `::error title=${esc(`${where}: ${testName(t)}${t.history ? ` (${t.history.state})` : ""}`)}::${esc(t.log?.split("\n").slice(-10).join("\n") || t.verdict)}`,
      );
    for (const t of run.tests.filter((x) => x.history?.quarantined))
      out.push(
        `::warning title=${esc(`${where}: ${testName(t)} failed, known flaky`)}::${esc(t.history?.text ?? "")}`,
      );
    for (const m of run.history?.measures ?? [])
      out.push(`::warning title=${esc(`${where}: a measure moved`)}::${esc(m)}`);
    for (const t of run.tests.filter((x) => x.verdict === "flaky"))
      out.push(`::warning title=${esc(`${where}: ${testName(t)} is flaky`)}::${esc(t.reason ?? "")}`);
    for (const f of findings(run)) out.push(`::error title=${esc(`${where}: ${f.what}`)}::${esc(f.text)}`);
  }
  return out;
}
