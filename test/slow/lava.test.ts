import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../src/host/paths.ts";
import { HOUR, khil } from "../helpers.ts";

// A real LAVA lab on this machine (harness/lava-lab.sh), its own state directory and a fresh database.
const state = mkdtempSync(join(tmpdir(), "khil-lava-"));
const lab = (cmd: string) =>
  execa("bash", [join(projectRoot, "harness/lava-lab.sh"), cmd], {
    env: { KHIL_LAVA_STATE: state },
    all: true,
  });
const URL = "http://127.0.0.1:8000/api/v0.2";
const DAEMONS = ["gunicorn", "publisher", "scheduler", "worker"];

async function api<T>(path: string, body?: unknown): Promise<T> {
  const token = readFileSync(join(state, "token"), "utf8").trim();
  const r = await fetch(`${URL}/${path}`, {
    method: body ? "POST" : "GET",
    headers: { Authorization: `Token ${token}`, "Content-Type": "application/json" },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

describe("LAVA jobs khil writes, in a real lab (slow tier)", () => {
  let pids: number[] = [];
  beforeAll(async () => {
    await lab("up");
    pids = DAEMONS.map((d) => Number(readFileSync(join(state, `${d}.pid`), "utf8")));
  }, HOUR);
  afterAll(async () => {
    await lab("down");
  }, HOUR);

  it(
    "validates the default cells' jobs on both arches, and the x86_64 one boots and passes its tests there",
    async () => {
      const artifacts = join(state, "artifacts");
      const jobs: Record<string, string> = {};
      for (const arch of ["x86_64", "arm64"]) {
        const out = join(state, `${arch}.yaml`);
        const r = await khil([
          "lava",
          "job",
          `${arch}-6.12-bpf-timer-default`,
          "--artifacts",
          artifacts,
          "--out",
          out,
        ]);
        expect(r.exitCode, r.all).toBe(0);
        jobs[arch] = readFileSync(out, "utf8");
        expect(await api<{ message: string }>("jobs/validate/", { definition: jobs[arch] })).toEqual({
          message: "Job valid.",
        });
      }
      const { job_ids } = await api<{ job_ids: number[] }>("jobs/", { definition: jobs.x86_64 });
      const id = job_ids[0];
      let job = { state: "", health: "" };
      for (let i = 0; i < 600 && job.state !== "Finished"; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        job = await api(`jobs/${id}/`);
      }
      expect(job.health).toBe("Complete");
      const tests = await api<{ results: { name: string; result: string }[] }>(`jobs/${id}/tests/`);
      const result = (n: string) => tests.results.find((t) => t.name === n)?.result;
      expect([result("test_progs"), result("timer_probe")]).toEqual(["pass", "pass"]);
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
