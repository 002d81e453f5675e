import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../src/host/paths.ts";
import { expandMatrix, loadMatrix } from "../../src/matrix/matrix.ts";
import type { ArchRun, Results } from "../../src/report/results.ts";
import { HOUR, khil, namesAndVerdicts, resultsOf } from "../helpers.ts";

// A real LAVA lab on this machine (harness/lava-lab.sh), its own state directory and a fresh database.
const state = mkdtempSync(join(tmpdir(), "khil-lava-"));
const lab = (cmd: string) =>
  execa("bash", [join(projectRoot, "harness/lava-lab.sh"), cmd], {
    env: { KHIL_LAVA_STATE: state },
    all: true,
  });
const SERVER = "http://127.0.0.1:8000";
const DAEMONS = ["gunicorn", "publisher", "scheduler", "worker"];
const tokenFile = join(state, "token");
const onLab = () => ["--engine", "lava", "--lava", SERVER, "--token-file", tokenFile];

async function api<T>(path: string, body?: unknown): Promise<T> {
  const token = readFileSync(tokenFile, "utf8").trim();
  const r = await fetch(`${SERVER}/api/v0.2/${path}`, {
    method: body ? "POST" : "GET",
    headers: { Authorization: `Token ${token}`, "Content-Type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

const jobOf = (run: ArchRun | undefined) =>
  api<{ state: string; health: string }>(`jobs/${run?.engine?.job.split("/").pop()}/`);

/** The lab's jobs not yet Finished: the lab is this test's own. */
async function unfinishedJobs(): Promise<number[]> {
  const all = await api<{ results: { id: number; state: string }[] }>("jobs/?limit=1000");
  return all.results.filter((j) => j.state !== "Finished").map((j) => j.id);
}

/** What a matrix table shows of each cell: its status and every test's verdict. */
function table(r: Results): Record<string, string[]> {
  return Object.fromEntries(r.runs.map((run) => [run.cell, [run.status, ...namesAndVerdicts(run.tests)]]));
}

describe("matrix cells as LAVA jobs, in a real lab (slow tier)", () => {
  let pids: number[] = [];
  beforeAll(async () => {
    await lab("up");
    pids = DAEMONS.map((d) => Number(readFileSync(join(state, `${d}.pid`), "utf8")));
  }, HOUR);
  afterAll(async () => {
    await lab("down");
  }, HOUR);

  it(
    "validates the job of every default cell on both arches",
    async () => {
      const artifacts = join(state, "artifacts");
      const cells = expandMatrix(loadMatrix(join(projectRoot, "matrix.yaml"))).map((c) => c.name);
      expect(cells).toHaveLength(6);
      for (const cell of cells) {
        const out = join(state, `${cell}.yaml`);
        const r = await khil(["lava", "job", cell, "--artifacts", artifacts, "--out", out]);
        expect(r.exitCode, r.all).toBe(0);
        const definition = readFileSync(out, "utf8");
        expect(await api<{ message: string }>("jobs/validate/", { definition })).toEqual({
          message: "Job valid.",
        });
      }
    },
    HOUR,
  );

  it(
    "the default matrix run through the lab gives the same table as run here",
    async () => {
      // The lab validates every job before it is submitted; an invalid one would end its cell in error.
      const viaLab = await khil(["matrix", ...onLab()]);
      expect(viaLab.exitCode, viaLab.all).toBe(0);
      const here = await khil(["matrix"]);
      expect(here.exitCode, here.all).toBe(0);
      const lava = resultsOf(viaLab.stdout).results;
      const local = resultsOf(here.stdout).results;
      expect(lava.runs.map((r) => r.cell)).toHaveLength(6);
      expect(table(lava)).toEqual(table(local));
      for (const run of lava.runs) {
        expect(run.engine?.job).toMatch(/^http:\/\/127\.0\.0\.1:8000\/scheduler\/job\/\d+$/);
        expect(run.guest?.kernelRelease).toBe(run.tests[0]?.kernel);
        expect(await jobOf(run)).toMatchObject({ state: "Finished", health: "Complete" });
      }
      expect(viaLab.stdout).toMatch(/LAVA job http:\/\/127\.0\.0\.1:8000\/scheduler\/job\/\d+/);
    },
    2 * HOUR,
  );

  it(
    "with one CPU, the inconclusive skips run again in the job, with the verdicts and reasons of a local run",
    async () => {
      const viaLab = await khil(["boot-and-test", ...onLab(), "--cpus", "1"]);
      const here = await khil(["boot-and-test", "--cpus", "1"]);
      const lab = resultsOf(viaLab.stdout).results.runs[0];
      const local = resultsOf(here.stdout).results.runs[0];
      const verdicts = (run: ArchRun | undefined) =>
        run?.tests.map((t) => `${t.test}${t.subtest ? `/${t.subtest}` : ""}:${t.verdict}:${t.reason ?? ""}`);
      expect(verdicts(lab)).toEqual(verdicts(local));
      expect(verdicts(lab)).toContain("timer_lockup:skip:skipped on all 4 attempts");
      expect(lab?.harness).toEqual(local?.harness);
      expect([viaLab.exitCode, lab?.status]).toEqual([here.exitCode, local?.status]);
    },
    HOUR,
  );

  it(
    "a kernel WARNING fails the cell with the splat charged to its command, as locally",
    async () => {
      const r = await khil([
        "boot-and-test",
        ...onLab(),
        "--suite",
        "test/fixtures/suites/lkdtm-warning.yaml",
      ]);
      expect(r.exitCode, r.all).toBe(1);
      const { dir, results } = resultsOf(r.stdout);
      const run = results.runs[0];
      expect(run?.status).toBe("failed");
      expect(run?.tests[0]?.verdict).toBe("pass");
      expect(run?.splats[0]).toMatchObject({ kind: "warning", during: "command provoke-warning" });
      expect(run?.splats[0]?.location).toMatch(/^drivers\/misc\/lkdtm\/bugs\.c:\d+$/);
      expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(/<failure type="kernel warning"/);
    },
    HOUR,
  );

  it(
    "a KTAP program that crashes before printing anything fails the cell, as locally",
    async () => {
      const r = await khil([
        "boot-and-test",
        ...onLab(),
        "--suite",
        "test/fixtures/suites/crashes-before-output.yaml",
      ]);
      expect(r.exitCode, r.all).toBe(1);
      const run = resultsOf(r.stdout).results.runs[0];
      expect([run?.status, run?.error]).toEqual(["failed", undefined]);
      expect(run?.problems).toEqual(["crashes printed no KTAP results (exit code 139)"]);
      expect(await jobOf(run)).toMatchObject({ state: "Finished", health: "Complete" });
    },
    HOUR,
  );

  it(
    "a guest that resets in silence fails the cell, named by its command, though LAVA blames its infrastructure",
    async () => {
      const r = await khil([
        "boot-and-test",
        ...onLab(),
        "--suite",
        "test/fixtures/suites/guest-resets.yaml",
      ]);
      expect(r.exitCode, r.all).toBe(1);
      const run = resultsOf(r.stdout).results.runs[0];
      expect([run?.status, run?.error]).toEqual(["failed", undefined]);
      expect(run?.splats).toContainEqual(
        expect.objectContaining({
          kind: "guest death",
          title: "the guest's QEMU exited during command resets (LAVA: Infrastructure: Connection closed)",
          during: "command resets",
        }),
      );
      expect(run?.fault).toBe("kernel");
      expect(await jobOf(run)).toMatchObject({ state: "Finished", health: "Incomplete" });
    },
    HOUR,
  );

  it(
    "the whole run's deadline cancels the job, and no job is left running",
    async () => {
      // sleeper's command sleeps 600 s under a 90 s deadline for the whole run.
      const r = await khil(["boot-and-test", ...onLab(), "--suite", "test/fixtures/suites/sleeper.yaml"]);
      expect(r.exitCode, r.all).toBe(1);
      const run = resultsOf(r.stdout).results.runs[0];
      expect(run?.error?.message).toMatch(/^timeout: whole run after 90 s/);
      expect(await jobOf(run)).toMatchObject({ state: "Finished", health: "Canceled" });
      expect(await unfinishedJobs()).toEqual([]);
    },
    HOUR,
  );

  it(
    "a job LAVA ends Incomplete is an error of the lab, with LAVA's reason, not a failed test",
    async () => {
      const r = await khil([
        "boot-and-test",
        ...onLab(),
        "--artifacts-url",
        "file:///nonexistent/",
        "--suite",
        "test/fixtures/suites/lkdtm-warning.yaml",
      ]);
      expect(r.exitCode, r.all).toBe(1);
      const run = resultsOf(r.stdout).results.runs[0];
      expect(run?.status).toBe("error");
      expect(run?.error?.stage).toBe("lava");
      expect(run?.error?.message).toMatch(/^LAVA job \d+ ended Incomplete: \S+/);
      expect(run?.tests).toEqual([]);
      expect(await jobOf(run)).toMatchObject({ state: "Finished", health: "Incomplete" });
    },
    HOUR,
  );

  it(
    "down stops every process of the lab",
    async () => {
      await lab("down");
      // Each daemon led its own session: no process of any of them (children included) runs on.
      const left = (await execa("ps", ["-e", "-o", "sid=,stat=,pid=,args="])).stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter(([sid, stat]) => pids.includes(Number(sid)) && !stat?.startsWith("Z"));
      expect(left).toEqual([]);
    },
    HOUR,
  );
});

describe("harness/lava-lab.sh on a machine whose lab khil did not make (slow tier)", () => {
  const OWNED = "/var/lib/lava-server/.khil-lab";
  const aside = `${OWNED}.aside`;
  const jobOutput = "/var/lib/lava-server/default/media/job-output";
  const sentinel = join(jobOutput, "khil-sentinel-someone-elses-job");
  const psql = (sql: string) => execa("su", ["postgres", "-c", `psql -qtA lavaserver -c "${sql}"`]);
  let startedPostgres = false;

  beforeAll(async () => {
    // The machine's lab as someone else's: lava-server installed, its database holding their data (a table
    // of their own), their job output on disk, and no mark that khil installed it.
    if ((await execa("pg_isready", ["-q", "-h", "localhost"], { reject: false })).exitCode !== 0) {
      await execa("pg_ctlcluster", ["15", "main", "start"]);
      startedPostgres = true;
    }
    await psql("CREATE TABLE IF NOT EXISTS khil_sentinel (job int); INSERT INTO khil_sentinel VALUES (42);");
    mkdirSync(jobOutput, { recursive: true });
    writeFileSync(sentinel, "someone else's job log\n");
    if (existsSync(OWNED)) renameSync(OWNED, aside);
  }, HOUR);

  afterAll(async () => {
    if (existsSync(aside)) renameSync(aside, OWNED);
    rmSync(sentinel, { force: true });
    await psql("DROP TABLE IF EXISTS khil_sentinel;").catch(() => {});
    if (startedPostgres) await execa("pg_ctlcluster", ["15", "main", "stop"]);
  }, HOUR);

  it(
    "up refuses in one line and changes nothing: database, job output, settings, no daemon started",
    async () => {
      const own = mkdtempSync(join(tmpdir(), "khil-lava-refuse-"));
      const r = await execa("bash", [join(projectRoot, "harness/lava-lab.sh"), "up"], {
        env: { KHIL_LAVA_STATE: own },
        reject: false,
        all: true,
      });
      expect(r.exitCode, r.all).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(
        /^lava-lab: lava-server here was not installed by khil .*KHIL_LAVA_TAKE_OVER=1/,
      );
      expect((await psql("SELECT job FROM khil_sentinel;")).stdout.trim()).toBe("42");
      expect(readFileSync(sentinel, "utf8")).toBe("someone else's job log\n");
      expect(existsSync("/etc/lava-server/settings.d/50-khil.yaml")).toBe(false);
      expect(existsSync(join(own, "gunicorn.pid"))).toBe(false);
      expect(existsSync(OWNED)).toBe(false);
    },
    HOUR,
  );
});
