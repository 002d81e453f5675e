/**
 * A run in KernelCI's KCIDB I/O format (schema v5), so that a lab can submit khil's results to KernelCI:
 * a checkout per tree and commit, a build per run, a test per result (and one for the boot), and an issue
 * per splat fingerprint with an incident wherever that splat appeared.
 */
import { createHash } from "node:crypto";
import { findings } from "./fault.ts";
import { splatFingerprint, stableTitle } from "./fingerprint.ts";
import { type ArchRun, type Results, testName, type Verdict } from "./results.ts";

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;

type Status = "FAIL" | "ERROR" | "MISS" | "PASS" | "DONE" | "SKIP";

/** flaky passed in the end (misc says it was flaky); notrun is KCIDB's MISS: the harness never ran it. */
const STATUS: Record<Verdict, Status> = {
  pass: "PASS",
  fail: "FAIL",
  skip: "SKIP",
  flaky: "PASS",
  error: "ERROR",
  notrun: "MISS",
};

/** KCIDB's limit on log excerpts. */
const EXCERPT = 16384;

export interface KcidbReport {
  version: typeof KCIDB_VERSION;
  checkouts: Record<string, unknown>[];
  builds: Record<string, unknown>[];
  tests: Record<string, unknown>[];
  issues: Record<string, unknown>[];
  incidents: Record<string, unknown>[];
}

const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** A name KCIDB's test paths take: dot-separated parts of letters, digits, `_` and `-`. */
function part(s: string): string {
  return s.replace(/[^a-zA-Z0-9_-]+/g, "_") || "_";
}

/** Only what is there (KCIDB allows no nulls), and no NUL character in any string (a console may hold one). */
function present(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o)
      .filter(([, v]) => v !== undefined && v !== "")
      .map(([k, v]) => [k, typeof v === "string" ? v.replace(/\0/g, "") : v]),
  );
}

function excerpt(s: string | undefined): string | undefined {
  return s ? s.slice(-EXCERPT).replace(/\0/g, "") : undefined;
}

/** How the kernel build went, in KCIDB's terms. */
function buildStatus(run: ArchRun): Status {
  if (!run.error || !["build", "series"].includes(run.error.stage))
    return run.timings.build === undefined && run.error ? "MISS" : "PASS";
  if (run.error.stage === "series") return "MISS";
  return run.error.fault === "harness" ? "ERROR" : "FAIL";
}

/** Whether it booted: a guest's facts are proof; a failed boot stage is the kernel's FAIL or the host's ERROR. */
function bootStatus(run: ArchRun): Status | undefined {
  if (run.guest) return "PASS";
  if (run.error?.stage === "boot") return run.error.fault === "harness" ? "ERROR" : "FAIL";
  return undefined;
}

export function toKcidb(r: Results, origin = "khil"): KcidbReport {
  if (!/^[a-z0-9_]+$/.test(origin))
    throw new Error(`origin ${origin}: KCIDB takes lowercase letters, digits and _ only`);
  const out: KcidbReport = {
    version: KCIDB_VERSION,
    checkouts: [],
    builds: [],
    tests: [],
    issues: [],
    incidents: [],
  };
  const checkouts = new Set<string>();
  const issues = new Set<string>();
  r.runs.forEach((run, n) => {
    const runId = run.id ?? hash(`${r.runDir}\n${n}\n${JSON.stringify(run)}`);
    const commit = run.series?.patches.at(-1)?.commit ?? run.commit;
    const checkoutId = `${origin}:${hash(`${run.treeName ?? run.tree}\n${commit ?? ""}`)}`;
    if (!checkouts.has(checkoutId)) {
      checkouts.add(checkoutId);
      out.checkouts.push(
        present({
          id: checkoutId,
          origin,
          tree_name: run.treeName ?? run.tree,
          git_commit_hash: commit && /^[0-9a-f]{40}$/.test(commit) ? commit : undefined,
          git_commit_name: commit && !/^[0-9a-f]{40}$/.test(commit) ? commit : undefined,
          start_time: run.startedAt,
          comment: run.series ? `${run.tree}` : undefined,
          misc: present({ tree: run.tree, series: run.series?.source }),
          ...(run.error?.stage === "series" ? { valid: false } : {}),
        }),
      );
    }
    const buildId = `${origin}:${runId}`;
    out.builds.push(
      present({
        id: buildId,
        origin,
        checkout_id: checkoutId,
        architecture: run.arch.toLowerCase().replace(/[^a-z0-9_]+/g, "_"),
        config_name: run.variant ? `khil+${run.variant}` : "khil",
        start_time: run.startedAt,
        duration: run.timings.build,
        status: buildStatus(run),
        comment: run.error && ["build", "series"].includes(run.error.stage) ? run.error.message : undefined,
        misc: present({
          suite: run.suite,
          accel: run.guest?.accel,
          kernel_release: run.guest?.kernelRelease,
          config_hash: run.guest?.configHash,
          run_status: run.status,
          fault: run.fault,
          cell: run.cell,
        }),
      }),
    );
    const environment = run.guest
      ? {
          comment: `QEMU ${run.guest.machine}, ${run.guest.accel}, ${run.guest.cpus} CPUs`,
          misc: { clocksource: run.guest.clocksource, jit: run.guest.bpfJitEnable },
        }
      : undefined;
    const suitePath = `khil.${part(run.suite)}`;
    const testIds = new Map<string, string>();
    const boot = bootStatus(run);
    if (boot)
      out.tests.push(
        present({
          id: `${buildId}:boot`,
          origin,
          build_id: buildId,
          path: `${suitePath}.boot`,
          status: boot,
          duration: run.guest?.bootSeconds,
          environment,
          comment: boot === "PASS" ? undefined : run.error?.message,
        }),
      );
    run.tests.forEach((t, i) => {
      const id = `${buildId}:${i}`;
      testIds.set(t.test, testIds.get(t.test) ?? id);
      out.tests.push(
        present({
          id,
          origin,
          build_id: buildId,
          path: [suitePath, part(t.test), ...(t.subtest ? [part(t.subtest)] : [])].join("."),
          status: STATUS[t.verdict],
          duration: t.durationMs === undefined ? undefined : t.durationMs / 1000,
          environment,
          comment: t.reason,
          log_excerpt: excerpt(t.log),
          misc: present({
            name: testName(t),
            command: t.command,
            verdict: t.verdict,
            history: t.history?.text,
            quarantined: t.history?.quarantined,
          }),
        }),
      );
    });
    // What the run found besides its tests (a problem, a harness fault) fails it: a test of its own.
    const other = findings(run).filter((f) => !f.what.startsWith("kernel "));
    if (other.length)
      out.tests.push(
        present({
          id: `${buildId}:findings`,
          origin,
          build_id: buildId,
          path: `${suitePath}.findings`,
          status: other.some((f) => f.class !== "harness") ? "FAIL" : "ERROR",
          comment: other.map((f) => f.brief).join("; "),
        }),
      );
    run.splats.forEach((s, i) => {
      const fp = s.fingerprint ?? splatFingerprint(s);
      const issueId = `${origin}:${fp}`;
      if (!issues.has(issueId)) {
        issues.add(issueId);
        out.issues.push(
          present({
            id: issueId,
            origin,
            version: 1,
            comment: `kernel ${s.kind}: ${stableTitle(s.title)}`,
            culprit: { code: true, tool: false, harness: false },
            misc: { fingerprint: fp, kind: s.kind },
          }),
        );
      }
      out.incidents.push(
        present({
          id: `${buildId}:splat:${i}`,
          origin,
          issue_id: issueId,
          issue_version: 1,
          build_id: buildId,
          test_id: testIds.get(s.during),
          present: true,
          comment: s.title,
        }),
      );
    });
  });
  return out;
}
