/**
 * `--engine lava`: a cell built here is booted and tested by a LAVA lab. Its job is submitted over the
 * REST API, followed, and its console read back as it comes; the same splat watch, parsers and verdicts
 * as a local run then judge it. A job LAVA ends Incomplete is the lab's fault, not the kernel's.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InfraError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { log } from "../common/log.ts";
import { guestFacts, harnessFaults, jitAsked, parseFacts } from "../guest/facts.ts";
import { trackRemote } from "../host/children.ts";
import { parseOutput } from "../parse/dispatch.ts";
import { ktapExitProblems } from "../parse/ktap.ts";
import { parseMeasures } from "../parse/measures.ts";
import { parseBookkeeping, unexplained } from "../parse/taint.ts";
import { deathCause, diedWhileRunning, exitCodeProblems } from "../parse/test-progs.ts";
import type { ParsedRun } from "../parse/types.ts";
import type { ArchRun } from "../report/results.ts";
import { archStatus, nothingPassedProblem } from "../report/verdict.ts";
import type { CellSpec, CellTester, Prepared } from "../run/cell.ts";
import { decodeSplats, stage } from "../run/cell.ts";
import { liveResult, recordDenied, recordParsed, stopped } from "../run/commands.ts";
import { type Activity, KernelWatch, STUCK_GRACE_MS } from "../run/kernel-log.ts";
import { rerunSkips } from "../run/rerun.ts";
import { LavaApi, type LavaJobState } from "./api.ts";
import { BOOKKEEPING_COMMAND, type CellJob, FACTS_COMMAND, jobFor, rerunStep } from "./cell-job.ts";
import { JobConsole, rerunAttempts, targetLines } from "./console.ts";

export interface Lab {
  url: string;
  token: string;
  /** Where kernels and initramfs go, and the URL the lab fetches that directory at. */
  artifacts: string;
  artifactsUrl: string;
}

const POLL_MS = 2000;
/** The facts command's deadline: a few reads of /proc and /sys. */
const FACTS_TIMEOUT_S = 60;
/** Time a canceled job gets to reach Finished (about 17 s measured on 2023.01). */
const CANCEL_WAIT_MS = 90_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The tester `matrix` and `boot-and-test` call for each built cell, in place of the local guest. */
export function lavaTester(lab: Lab): CellTester {
  const api = new LavaApi(lab.url, lab.token);
  return (spec, run, prepared) => testOnLab(api, lab, spec, run, prepared);
}

async function testOnLab(api: LavaApi, lab: Lab, spec: CellSpec, run: ArchRun, p: Prepared): Promise<void> {
  const watch = new KernelWatch(run);
  try {
    const job = await stage(spec, run, "image", () => jobFor(spec, p, lab));
    if (!job) return;
    writeFileSync(join(spec.runDir, `lava-job-${spec.arch.name}.yaml`), job.definition);
    const id = await stage(spec, run, "submit", async () => {
      await api.validate(job.definition);
      return api.submit(job.definition);
    });
    if (id === undefined) return;
    run.engine = { name: "lava", job: api.jobUrl(id) };
    log(`${run.cell ?? run.arch}: LAVA job ${api.jobUrl(id)}`);
    await stage(spec, run, "run", () => follow(api, id, spec, run, p, job, watch));
  } finally {
    watch.finish();
    // The kernel the lab booted was built here: its vmlinux decodes the lab's splats as a local run's.
    await decodeSplats(spec.arch, p, run);
    run.status = archStatus(run);
  }
}

/** Reads the job's log as the lab writes it, until the job is Finished; then judges what it printed. */
async function follow(
  api: LavaApi,
  id: number,
  spec: CellSpec,
  run: ArchRun,
  p: Prepared,
  job: CellJob,
  watch: KernelWatch,
): Promise<void> {
  const { runDir } = spec;
  const arch = spec.arch.name;
  const consoleLog = join(runDir, "console.log");
  const fullLog = join(runDir, `lava-job-${arch}.log`);
  writeFileSync(fullLog, "");
  let activity: Activity | undefined;
  // Each command's deadline, counted from when its begin marker reached khil, as the local run's SSH does.
  const limits = new Map([
    [FACTS_COMMAND.name, FACTS_TIMEOUT_S],
    [BOOKKEEPING_COMMAND.name, FACTS_TIMEOUT_S],
    ...spec.suite.commands.map((c) => [c.name, c.timeout] as const),
  ]);
  let begunAt = 0;
  let timedOut: string | undefined;
  const con = new JobConsole(
    job.commands.map((c) => c.name),
    {
      kernel: (line) => watch.feed(line),
      begin: (name) => {
        begunAt = Date.now();
        activity = watch.begin(
          name === FACTS_COMMAND.name
            ? "facts"
            : name === BOOKKEEPING_COMMAND.name
              ? "end of run"
              : `command ${name}`,
        );
      },
      output: (_name, line) => {
        const result = liveResult(line);
        if (result) activity?.attribute(result.test);
      },
      end: () => {
        activity?.end();
        activity = undefined;
      },
    },
  );
  let canceled: string | undefined;
  const untrack = trackRemote(() => api.cancel(id));
  let start = 0;
  let state: LavaJobState;
  let firstDt: string | undefined;
  let stuckAt: number | undefined;
  try {
    for (;;) {
      state = await api.job(id);
      const entries = await api.logs(id, start);
      const first = start === 0 ? entries[0] : undefined;
      if (first && Date.parse(`${first.dt}Z`) < Date.parse(state.submit_time))
        throw new InfraError(
          `LAVA served job ${id} a log written before the job was submitted (${first.dt}, job ${state.submit_time}): the lab reuses job ids over old job-output files`,
          "lava",
        );
      start += entries.length;
      for (const e of entries) appendFileSync(fullLog, `${JSON.stringify(e)}\n`);
      for (const { dt, line } of targetLines(entries)) {
        firstDt ??= dt;
        appendFileSync(consoleLog, `${line}\n`);
        con.feed(line, dt);
      }
      if (state.state === "Finished" && entries.length === 0) break;
      // A stuck kernel never answers the next command: the job would wait out LAVA's own timeouts.
      if (watch.stuck && !canceled) {
        stuckAt ??= Date.now();
        if (Date.now() - stuckAt > STUCK_GRACE_MS) canceled = `the kernel reported a ${watch.stuck.kind}`;
      }
      const running = con.running;
      const limit = running ? limits.get(running) : undefined;
      if (running && limit && !canceled && Date.now() - begunAt > limit * 1000) {
        timedOut = running;
        canceled = `timeout: command ${running} after ${limit} s`;
      }
      const deadline = spec.machine.runDeadline;
      if (deadline?.expired && !canceled) canceled = deadline.message;
      if (canceled && state.state !== "Canceling" && state.state !== "Finished") {
        log(`${run.cell ?? arch}: canceling LAVA job ${id}: ${canceled}`);
        await api.cancel(id);
        const until = Date.now() + CANCEL_WAIT_MS;
        while ((await api.job(id)).state !== "Finished" && Date.now() < until) await sleep(POLL_MS);
      }
      await sleep(POLL_MS);
    }
  } catch (e) {
    // Whatever stopped khil following the job must not leave it holding a device.
    await api.cancel(id).catch(() => {});
    throw e;
  } finally {
    untrack();
    activity?.end();
  }
  const lab = state.health === "Incomplete" ? await api.failure(id, state) : undefined;
  const wentAway = lab && !canceled && !watch.stuck ? guestWentAway(con, lab) : undefined;
  await judgeJob(spec, run, p, job, con, watch, { state, firstDt, timedOut, wentAway });
  // A job khil canceled for a stuck kernel or a command's deadline has its verdict: the cancel is khil's;
  // so has one whose guest went away under it: that is the kernel's doing, not the lab's.
  if (state.health === "Complete" || watch.stuck || timedOut || wentAway) return;
  const deadline = spec.machine.runDeadline;
  if (deadline?.expired) throw new InfraError(`${deadline.message} (LAVA job ${id} canceled)`, "run");
  if (state.health === "Canceled") throw new InfraError(`LAVA job ${id} was canceled`, "lava");
  throw new InfraError(`LAVA job ${id} ended ${state.health}: ${lab ?? "no reason given"}`, "lava");
}

/**
 * A guest that came up and then went away under the job: the liveness check of a LAVA run, whose last
 * command (the bookkeeping) answers only if the guest is still there. QEMU runs with -no-reboot
 * (harness/arch/*.yaml), so a reset or a power-off the kernel did ends QEMU, and LAVA reports its shell's
 * connection closed — as "Infrastructure: Connection closed" (2023.01, measured), the same words as for a
 * lab's fault, so the console decides: khil's commands began, and the last never ended. A local run says
 * the same of a QEMU that exited by itself (run/cell.ts).
 */
export function guestWentAway(con: JobConsole, lab: string): string | undefined {
  const cameUp = con.segments.get(FACTS_COMMAND.name)?.code !== undefined;
  const answeredLast = con.segments.get(BOOKKEEPING_COMMAND.name)?.code !== undefined;
  if (!cameUp || answeredLast || !/connection closed/i.test(lab)) return undefined;
  const during = con.running ? `command ${con.running}` : "the run";
  return `the guest's QEMU exited during ${during} (LAVA: ${lab})`;
}

async function judgeJob(
  spec: CellSpec,
  run: ArchRun,
  p: Prepared,
  job: CellJob,
  con: JobConsole,
  watch: KernelWatch,
  at: { state: LavaJobState; firstDt?: string; timedOut?: string; wentAway?: string },
): Promise<void> {
  const arch = spec.arch.name;
  const facts = con.segments.get(FACTS_COMMAND.name);
  if (facts) {
    const bootSeconds =
      at.firstDt && facts.startedAt
        ? (Date.parse(`${facts.startedAt}Z`) - Date.parse(`${at.firstDt}Z`)) / 1000
        : 0;
    const f = guestFacts(parseFacts(facts.lines.join("\n")), p.build, {
      arch,
      accel: "lava",
      reason: `LAVA device ${at.state.actual_device ?? "unknown"}`,
      bootSeconds,
    });
    run.guest = f.facts;
    run.timings.bootToSsh = bootSeconds;
    run.harness?.push(
      ...f.problems,
      ...harnessFaults(f.facts, spec.suite.minCpus, jitAsked(spec.machine.append)),
    );
  }
  const base = { arch, kernel: p.build.release, accel: "lava", suite: spec.suite.name };
  const stuck = watch.stuck;
  const notRun: string[] = [];
  for (const cmd of spec.suite.commands) {
    const seg = con.segments.get(cmd.name);
    const rec = { ...base, command: cmd.name };
    const plan = job.plans.get(cmd.name);
    recordDenied(run, rec, plan?.denied ?? []);
    if (plan?.toRun.length === 0) continue;
    if (!seg) {
      notRun.push(cmd.name);
      continue;
    }
    const output = seg.lines.join("\n");
    const logFile = join(spec.runDir, `test-${arch}-${cmd.name}.log`);
    writeFileSync(logFile, `${output}\n`);
    const code = seg.code ?? null;
    let parsed: ParsedRun = parseOutput(cmd.parser, cmd.name, code, output);
    const measured = parseMeasures(output);
    const unfinished = seg.code === undefined;
    const timedOut = at.timedOut === cmd.name;
    // The same causes, in the same words, as a local run's (run/commands.ts).
    if (cmd.parser === "test_progs") {
      const died = !unfinished
        ? deathCause(code)
        : timedOut
          ? stopped.atDeadline(cmd)
          : stuck
            ? stopped.afterStuck(stuck)
            : "did not finish before the LAVA job ended";
      if (died) parsed = diedWhileRunning(parsed, plan?.toRun ?? [], died);
      else parsed.problems.push(...exitCodeProblems(code, parsed));
    } else if (cmd.parser === "ktap" && !unfinished) {
      const exit = ktapExitProblems(cmd.name, code, parsed);
      parsed.problems.push(...exit.problems);
      run.harness = [...(run.harness ?? []), ...exit.harness];
    }
    if (timedOut) parsed.problems.push(stopped.timeoutProblem(cmd));
    else if (unfinished && stuck) parsed.problems.push(stopped.stuckProblem(cmd, stuck));
    else if (unfinished) parsed.problems.push(`command ${cmd.name} did not finish before the LAVA job ended`);
    run.problems.push(...parsed.problems, ...measured.problems);
    const again = con.segments.get(rerunStep(cmd.name));
    if (cmd.parser === "test_progs" && again && !stuck) {
      appendFileSync(logFile, `${again.lines.join("\n")}\n`);
      const attempts = rerunAttempts(again.lines);
      await rerunSkips(
        {
          arch,
          alone: async (test, why) =>
            parseOutput(cmd.parser, cmd.name, null, attempts.get(`${test} ${why}`) ?? "").tests.filter(
              (t) => t.test === test,
            ),
          stuck: () => false,
        },
        spec.suite,
        parsed.tests,
      );
    }
    recordParsed(run, rec, parsed.tests, measured.measures, spec.suite.bounds);
  }
  if (at.wentAway)
    watch.unnamed("guest death", at.wentAway, con.running ? `command ${con.running}` : "the run");
  if (notRun.length)
    run.problems.push(
      stuck ? stopped.notRunProblem(stuck, notRun) : `the LAVA job ended first: ${notRun.join(", ")} not run`,
    );
  // The kernel's own bookkeeping at the job's end, as a local run reads it (run/kernel-log.ts).
  const book = con.segments.get(BOOKKEEPING_COMMAND.name);
  const counted = book && parseBookkeeping(book.lines.join("\n"));
  if (counted)
    for (const p of unexplained(
      undefined,
      counted,
      run.splats.filter((x) => x.source !== "bookkeeping").length,
    ))
      watch.unnamed("unrecognised report", p, "the job");
  const none = nothingPassedProblem(run.tests, (t) => matchesAny(t, spec.suite.allowSkip));
  if (none) run.problems.push(none);
}
