/**
 * The LAVA server's REST API, as of LAVA 2023.01 (Debian bookworm's; KernelCI's and LKFT's labs run later
 * versions, which keep these calls): validate, submit, follow, read the log, cancel.
 */
import { parse } from "yaml";
import { InfraError } from "../common/errors.ts";
import { type LogEntry, parseLavaLog } from "./console.ts";

export interface LavaJobState {
  id: number;
  /** Submitted, Scheduling, Scheduled, Running, Canceling, Finished. */
  state: string;
  /** Unknown, Complete, Incomplete, Canceled. */
  health: string;
  failure_comment?: string | null;
  submit_time: string;
  actual_device?: string | null;
}

interface LavaTestCase {
  name: string;
  result: string;
  metadata?: string;
}

const GET_ATTEMPTS = 4;

export class LavaApi {
  readonly base: string;
  constructor(
    url: string,
    private readonly token: string,
  ) {
    this.base = url.replace(/\/+$/, "");
  }

  /** Where a person follows the job in the lab's own UI. */
  jobUrl(id: number): string {
    return `${this.base}/scheduler/job/${id}`;
  }

  private async call(path: string, body?: unknown, missingOk = false): Promise<string> {
    const url = `${this.base}/api/v0.2/${path}`;
    let r: Response | undefined;
    // A GET is asked again when the connection drops (seen here: gunicorn's eventlet workers now and then
    // close a kept-alive one); a POST is not, since a submission may have landed.
    for (let attempt = 1; !r; attempt++) {
      try {
        r = await fetch(url, {
          method: body === undefined ? "GET" : "POST",
          headers: { Authorization: `Token ${this.token}`, "Content-Type": "application/json" },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: AbortSignal.timeout(60_000),
        });
      } catch (e) {
        if (body !== undefined || attempt >= GET_ATTEMPTS)
          throw new InfraError(`LAVA ${url}: ${(e as Error).cause ?? (e as Error).message}`, "lava");
        await new Promise((done) => setTimeout(done, 1000 * attempt));
      }
    }
    const text = await r.text();
    if (r.status === 404 && missingOk) return "";
    if (r.status === 401 || r.status === 403)
      throw new InfraError(
        `LAVA ${url}: HTTP ${r.status}: the token is not accepted (--token, --token-file)`,
        "lava",
      );
    if (!r.ok) throw new InfraError(`LAVA ${url}: HTTP ${r.status}: ${text.slice(0, 300)}`, "lava");
    return text;
  }

  /** The lab's schema check; the message names what is wrong with the job. */
  async validate(definition: string): Promise<void> {
    const r = JSON.parse(await this.call("jobs/validate/", { definition })) as { message?: string };
    if (r.message !== "Job valid.") throw new InfraError(`LAVA rejects khil's job: ${r.message}`, "lava");
  }

  async submit(definition: string): Promise<number> {
    const r = JSON.parse(await this.call("jobs/", { definition })) as { job_ids?: number[] };
    const id = r.job_ids?.[0];
    if (id === undefined) throw new InfraError("LAVA accepted the job but returned no job id", "lava");
    return id;
  }

  async job(id: number): Promise<LavaJobState> {
    return JSON.parse(await this.call(`jobs/${id}/`)) as LavaJobState;
  }

  /** The log's entries from the `start`th on: the server adds to it while the job runs, and has none before. */
  async logs(id: number, start: number): Promise<LogEntry[]> {
    return parseLavaLog(await this.call(`jobs/${id}/logs/?start=${start}`, undefined, true));
  }

  /** A GET in 2023.01 (POST answers 405); the job reaches Finished some seconds later. */
  async cancel(id: number): Promise<void> {
    await this.call(`jobs/${id}/cancel/`);
  }

  /** Why LAVA ended a job Incomplete: its own `lava/job` test case carries error_type and error_msg. */
  async failure(id: number, job: LavaJobState): Promise<string> {
    const tests = JSON.parse(await this.call(`jobs/${id}/tests/?limit=500`)) as { results?: LavaTestCase[] };
    const jobCase = tests.results?.find((t) => t.name === "job" && t.result === "fail");
    const meta = jobCase?.metadata ? (parse(jobCase.metadata) as Record<string, unknown>) : {};
    const parts = [meta.error_type, meta.error_msg].filter(
      (x): x is string => typeof x === "string" && x !== "",
    );
    return (parts.length ? parts.join(": ") : (job.failure_comment ?? "no reason given")).trim();
  }
}
