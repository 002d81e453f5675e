import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { medianRatio } from "../src/bisect/bisect.ts";
import { judge, rawWork, type StepRecord } from "../src/bisect/judge.ts";
import { hostCause } from "../src/kernel/make-output.ts";
import { splatsByMarker } from "../src/parse/splats.ts";
import { diedWhileRunning, parseTestProgs, withJsonSummary } from "../src/parse/test-progs.ts";
import { githubAnnotations } from "../src/report/annotations.ts";
import { runFault } from "../src/report/fault.ts";
import { toJunit } from "../src/report/junit.ts";
import type { ArchRun, Results } from "../src/report/results.ts";
import { matrixTable, summaryTable, toMarkdown } from "../src/report/summary.ts";
import { archStatus, nothingPassedProblem } from "../src/report/verdict.ts";
import { namesAndVerdicts } from "./helpers.ts";

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");
/** results.json of real runs of this project's kernels (test/fixtures/results/, named by scenario). */
const results = (name: string) => JSON.parse(fixture(`results/${name}.json`)) as Results;
const run = (name: string) => results(name).runs[0] as ArchRun;
const wrap = (r: ArchRun): Results => ({ khil: "t", startedAt: "", finishedAt: "", runDir: "", runs: [r] });

describe("verdicts of real runs", () => {
  it("a WARNING alone fails the run, in results, JUnit, Markdown and GitHub annotations", () => {
    const r = results("arm64-lkdtm-warning");
    const warned = r.runs[0] as ArchRun;
    expect(warned.tests.map((t) => t.verdict)).toEqual(["pass"]);
    expect(archStatus(warned)).toBe("failed");
    const junit = toJunit(r);
    expect(junit).toMatch(/<testcase classname="arm64.lkdtm-warning" name="kernel">/);
    expect(junit).toMatch(
      /<failure type="kernel warning" message="WARNING: CPU: 1 PID: \d+ at drivers\/misc\/lkdtm\/bugs.c:112 /,
    );
    expect(junit).toMatch(/failures="1"/);
    expect(toMarkdown(r)).toMatch(
      /\*\*kernel warning\*\*: during command provoke-warning \(console\): WARNING: CPU/,
    );
    expect(githubAnnotations(r).join("\n")).toMatch(
      /^::error title=arm64: kernel warning::during command provoke-warning/m,
    );
  });

  it("a panic after a flaky test's passing retry fails the run although the test itself is flaky", () => {
    const panicked = run("x86_64-flaky-then-panic");
    expect(panicked.tests[0]?.verdict).toBe("flaky");
    expect(archStatus(panicked)).toBe("failed");
    expect(archStatus({ ...panicked, splats: [] })).toBe("passed");
  });

  it("a splat decides over what followed from it: a lost connection is not the verdict", () => {
    const panicked = run("x86_64-flaky-then-panic");
    const lost = { ...panicked, error: { stage: "run", message: "Not connected" } };
    expect(archStatus(lost)).toBe("failed");
    expect(archStatus({ ...lost, splats: [] })).toBe("error");
    const junit = toJunit({ ...results("x86_64-flaky-then-panic"), runs: [lost] });
    expect(junit).toMatch(
      /<failure type="kernel panic" message="Kernel panic - not syncing: dumptest \(during wobbly \(failed, attempt 2\)\)"/,
    );
  });

  it("a panic during boot fails the run with the panic, not an error of the boot stage", () => {
    const boot = run("x86_64-boot-panic");
    expect(boot.error?.stage).toBe("boot");
    expect(archStatus(boot)).toBe("failed");
    expect(boot.splats[0]).toMatchObject({ kind: "panic", during: "boot" });
  });

  it("a run in which no selected test passed is not green, unless the suite allows that skip", () => {
    const locked = run("x86_64-rerun-lockup");
    const tests = locked.tests;
    expect(nothingPassedProblem(tests, () => false)).toBe(
      "no selected test passed: lockme skipped itself (skipped on all 2 attempts)",
    );
    expect(nothingPassedProblem(tests, (t) => t === "lockme")).toBeUndefined();
    const denied = tests.map((t) => ({ ...t, reason: "denied: no trampolines here" }));
    expect(nothingPassedProblem(denied, () => false)).toBeUndefined();
    expect(archStatus({ ...locked, splats: [], problems: [], tests: denied })).toBe("skipped");
  });
});

describe("JUnit says what the status says", () => {
  const base = run("x86_64-flaky-then-panic");
  const clean = { ...base, splats: [], problems: [], harness: [], tests: [] };

  it("a test planned and never run fails the run, and is a <failure> there, not a <skipped>", () => {
    const notrun = {
      ...clean,
      tests: [
        { ...base.tests[0], verdict: "notrun" as const, reason: "the plan promised 3 subtests, 2 came" },
      ],
    } as ArchRun;
    expect(archStatus(notrun)).toBe("failed");
    const junit = toJunit(wrap(notrun));
    expect(junit).toMatch(
      /<failure type="notrun" message="not run: the plan promised 3 subtests, 2 came"\/>/,
    );
    expect(junit).toMatch(/failures="1" errors="0" skipped="0"/);
  });

  it("an ERROR run with no test at all and no stage failing has an <error>, not an empty green suite", () => {
    expect(archStatus(clean)).toBe("error");
    const junit = toJunit(wrap(clean));
    expect(junit).toMatch(
      /<testcase classname="x86_64.flaky-then-panic" name="results"><error message="no selected test gave a result"\/>/,
    );
    expect(junit).toMatch(/failures="0" errors="1"/);
  });

  it("a problem with no test result (a program that crashed before its plan) is FAILED, with its <failure>", () => {
    const crashed = { ...clean, problems: ["crashes printed no KTAP results (exit code 139)"] };
    expect(archStatus(crashed)).toBe("failed");
    expect(toJunit(wrap(crashed))).toMatch(
      /<failure type="problem" message="crashes printed no KTAP results/,
    );
  });
});

describe("bisect judges the kernel, not the host", () => {
  it("a step whose only fault is the host's is skipped (125), never bad", () => {
    const ok = { ...run("x86_64-flaky-then-panic"), splats: [], status: "failed" as const };
    const slowHost = {
      ...ok,
      harness: ["hrtimers are in low-resolution mode (resolution 4000000 ns, clocksource tsc)"],
    };
    expect(judge(slowHost)).toEqual({
      verdict: "skip",
      reason: "harness fault: hrtimers are in low-resolution mode (resolution 4000000 ns, clocksource tsc)",
    });
    expect(judge({ ...ok, status: "passed" }).verdict).toBe("good");
    expect(judge({ ...ok, error: { stage: "run", message: "timeout: whole run after 90 s" } }).verdict).toBe(
      "skip",
    );
  });

  it("kernel splats are bad; a panic at boot is bad for --type boot, a boot timeout without one is skip", () => {
    expect(judge(run("x86_64-flaky-then-panic")).verdict).toBe("bad");
    const boot = run("x86_64-boot-panic");
    expect(judge(boot, "boot")).toEqual({
      verdict: "bad",
      reason:
        "kernel panic during boot: Kernel panic - not syncing: Requested init /nonexistent failed (error -2).",
    });
    expect(judge({ ...boot, splats: [] }, "boot").verdict).toBe("skip");
    expect(judge(boot, "build")).toEqual({ verdict: "good", reason: "the kernel builds" });
    expect(
      judge({ ...boot, error: { stage: "build", message: "kernel build failed: x.c:1: error: y" } }, "build")
        .verdict,
    ).toBe("bad");
  });

  it("a panic right after SSH came up (facts, push) is bad, even for --type boot", () => {
    const boot = run("x86_64-boot-panic");
    for (const during of ["facts", "push"]) {
      const late = {
        ...boot,
        error: { stage: during, message: "Not connected" },
        splats: [{ ...boot.splats[0], during }],
      };
      expect(judge(late as ArchRun, "boot").verdict, during).toBe("bad");
      expect(judge(late as ArchRun).verdict, during).toBe("bad");
    }
  });

  it("what interrupted the run from outside (khil's deadline mid-command, QEMU killed by the host) is skip, with what failed after it", () => {
    const failedAfter = {
      ...run("x86_64-flaky-then-panic"),
      splats: [],
      problems: ["command c ended without an exit code (connection lost)"],
      interrupted: "QEMU was killed by SIGKILL, not by khil (the host's OOM killer, or another user)",
    };
    expect(judge(failedAfter)).toEqual({
      verdict: "skip",
      reason: "interrupted: QEMU was killed by SIGKILL, not by khil (the host's OOM killer, or another user)",
    });
    expect(archStatus(failedAfter)).toBe("error");
    expect(toJunit({ khil: "t", startedAt: "", finishedAt: "", runDir: "", runs: [failedAfter] })).toContain(
      '<testcase classname="x86_64.flaky-then-panic" name="interrupted"><error message="QEMU was killed by SIGKILL',
    );
    // a test that failed before the interruption still decides; one its command's cut left failed does not
    const failing = {
      test: "timer_crash",
      verdict: "fail" as const,
      arch: "x86_64",
      kernel: "6.12",
      accel: "tcg",
      suite: "s",
      command: "test_progs",
    };
    expect(judge({ ...failedAfter, tests: [...failedAfter.tests, failing] }).verdict).toBe("bad");
    expect(
      judge({
        ...failedAfter,
        tests: [...failedAfter.tests, { ...failing, afterInterruption: true as const }],
      }).verdict,
    ).toBe("skip");
    // a splat before the interruption still decides
    expect(judge({ ...failedAfter, splats: run("x86_64-flaky-then-panic").splats }).verdict).toBe("bad");
  });

  it("a step is weighed against the raw make, boot and tests it stands for", () => {
    const timings = { build: 30, make: 24, selftests: 3, boot: 4, bootToSsh: 3.5, "command:test_progs": 2.5 };
    expect(rawWork(timings, 36)).toEqual({ make: 24, boot: 3.5, tests: 2.5, ratio: 1.2 });
    // A step that took a verdict without booting has no raw boot or tests to weigh.
    expect(rawWork({ build: 1, make: 0 }, 2).ratio).toBe(0);
    const step = (ratio: number) => ({ raw: { make: 1, boot: 1, tests: 1, ratio } }) as StepRecord;
    expect(medianRatio([step(1.3), step(0), step(1.1), step(1.2)])).toBe(1.2);
    expect(medianRatio([step(1.3), step(1.1)])).toBe(1.2);
    expect(medianRatio([step(0)])).toBeUndefined();
  });
});

describe("test_progs that did not finish (real guest outputs)", () => {
  it("test_progs catches SIGSEGV itself: the running test fails once, with its backtrace", () => {
    const run = parseTestProgs(fixture("test_progs/x86_64-6.12-sigsegv-caught.txt"));
    expect(namesAndVerdicts(run.tests)).toContain("timer_lockup:fail");
    expect(run.tests.filter((t) => t.test === "timer_lockup")).toHaveLength(1);
    expect(run.tests.find((t) => t.test === "timer_lockup")?.log).toMatch(/^Caught signal #11!/);
    expect(run.problems).toEqual([]);
  });

  it("blames the test its crash handler named, not the next selected one", () => {
    const run = parseTestProgs(fixture("test_progs/x86_64-6.12-sigsegv-caught.txt"));
    expect(run.crashed).toBe("timer_lockup");
    const died = diedWhileRunning(
      run,
      ["timer", "timer_crash", "timer_lockup", "timer_mim"],
      "was killed by SIGSEGV (exit 139)",
    );
    expect(namesAndVerdicts(died.tests).slice(-2)).toEqual(["timer_lockup:fail", "timer_mim:pass"]);
    expect(died.tests.find((t) => t.test === "timer_lockup")?.reason).toBe(
      "test_progs was killed by SIGSEGV (exit 139) in it (its crash handler said so)",
    );
    expect(died.problems.at(-1)).toBe("test_progs was killed by SIGSEGV (exit 139) in timer_lockup");
  });

  it("a malformed JSON summary is a problem of the run, not an aborted run", () => {
    const text = parseTestProgs(fixture("test_progs/x86_64-6.12-pass.txt"));
    const broken = withJsonSummary(text, fixture("test_progs/x86_64-6.12-pass.json").slice(0, 30));
    expect(broken.tests).toEqual(text.tests);
    expect(broken.problems[0]).toMatch(/^test_progs' JSON summary is malformed: /);
  });

  it("test_progs killed (SIGKILL) mid-run: the running test is named, the rest are not run", () => {
    const killed = parseTestProgs(fixture("test_progs/x86_64-6.12-killed-sigkill.txt"));
    expect(killed.problems).toEqual(["no Summary line: test_progs did not finish"]);
    const died = diedWhileRunning(
      killed,
      ["timer", "timer_crash", "timer_lockup", "timer_mim"],
      "was killed by SIGKILL (exit 137)",
    );
    expect(namesAndVerdicts(died.tests).slice(-3)).toEqual([
      "timer_crash:pass",
      "timer_lockup:fail",
      "timer_mim:notrun",
    ]);
    expect(died.problems.at(-1)).toBe(
      "test_progs was killed by SIGKILL (exit 137) while timer_lockup ran; not run: timer_mim",
    );
  });
});

describe("dmesg splats charged by khil's markers", () => {
  it("charges the WARNING to the command whose marker precedes it, and earlier lines to boot", () => {
    const dmesg = fixture("dmesg/arm64-lkdtm-warning.log");
    const [w] = splatsByMarker(dmesg);
    expect(w?.during).toBe("command provoke-warning");
    expect(w?.splat.kind).toBe("warning");
    const beforeMarker = dmesg.slice(0, dmesg.indexOf("khil: begin"));
    const planted = `${beforeMarker}${dmesg.slice(dmesg.indexOf("WARNING: CPU"))}`;
    expect(splatsByMarker(planted)[0]?.during).toBe("boot");
  });
});

describe("one fault taxonomy (report/fault.ts): kernel, test, harness, read by every report and by bisect", () => {
  const boot = run("x86_64-boot-panic");
  const healthy = { ...boot, splats: [], error: undefined, status: "passed" as const };
  const buildError = (message: string, fault?: "kernel" | "harness") =>
    ({
      ...healthy,
      guest: undefined,
      error: { stage: "build", message, ...(fault ? { fault } : {}) },
    }) as ArchRun;

  it("a build the host failed (timeout, full disk, OOM-killed compiler) is skip even for --type build; a compile error is bad", () => {
    const logs = {
      "full disk":
        "  CC      kernel/bpf/helpers.o\nkernel/bpf/helpers.c:1:0: fatal error: error writing to /tmp/ccX.s: No space left on device\n",
      oom: "  CC      kernel/bpf/verifier.o\ngcc: fatal error: Killed signal terminated program cc1\ncompilation terminated.\n",
    };
    for (const [what, text] of Object.entries(logs)) {
      const cause = hostCause(text);
      expect(cause, what).toBeDefined();
      const j = judge(buildError(`kernel build failed on the host: ${cause}`, "harness"), "build");
      expect(j.verdict, what).toBe("skip");
      expect(runFault(buildError("x", "harness")), what).toBe("harness");
    }
    expect(hostCause("kernel/bpf/helpers.c:12:1: error: expected ';' before '}' token\n")).toBeUndefined();
    // A compiler quoting source that speaks of memory is no host out of memory.
    const quoted = [
      "drivers/x.c:42:3: error: implicit declaration of function 'kzallc'",
      "drivers/x.c:40:9: warning: format '%d' expects int [-Wformat=]",
      '   40 |   dev_err(dev, "Cannot allocate memory for %d rings\\n", n);',
      "      |          ^~~~~~~",
    ].join("\n");
    expect(hostCause(quoted)).toBeUndefined();
    expect(judge(buildError("timeout: build after 2400 s", "harness"), "build").verdict).toBe("skip");
    const compile = buildError(
      "kernel build failed: kernel/bpf/helpers.c:12:1: error: expected ';'",
      "kernel",
    );
    expect(judge(compile, "build")).toEqual({
      verdict: "bad",
      reason: "build: kernel build failed: kernel/bpf/helpers.c:12:1: error: expected ';'",
    });
    // A tree that does not compile cannot be booted or tested: those bisects skip it.
    expect(judge(compile, "boot").verdict).toBe("skip");
    expect(judge(compile, "test").verdict).toBe("skip");
    expect(runFault(compile)).toBe("kernel");
  });

  it("--type boot asks only whether the kernel booted: a guest unfit for tests still booted, another kernel did not", () => {
    const guest = run("x86_64-flaky-then-panic").guest;
    const unfit = { ...healthy, guest, harness: ["the guest has 2 CPU(s), the suite needs 4"] };
    expect(judge(unfit as ArchRun, "boot").verdict).toBe("good");
    expect(judge(unfit as ArchRun).verdict).toBe("skip");
    const other = {
      ...unfit,
      guest: { ...guest, configHash: "guest:0123456789ab" },
      harness: ["the guest's /proc/config.gz is not the config khil built: it booted another kernel"],
    };
    expect(judge(other as ArchRun, "boot").verdict).toBe("skip");
  });

  it("a guest that ended by itself during boot (a silent reset) is the kernel's: bad for --type boot", () => {
    const reset = {
      ...healthy,
      guest: undefined,
      status: "error" as const,
      error: { stage: "boot", message: "guest exited during boot (qemu 0: )", fault: "kernel" as const },
    };
    expect(judge(reset, "boot").verdict).toBe("bad");
    expect(judge(reset).verdict).toBe("bad");
    // QEMU that could not start, or no SSH in time, says nothing of the kernel.
    const qemu = {
      ...reset,
      error: { stage: "boot", message: "guest exited during boot (qemu 1: bad option)" },
    };
    expect(judge(qemu, "boot").verdict).toBe("skip");
    expect(runFault(qemu)).toBe("harness");
  });

  it("a fault no pattern names (the bookkeeping's report, a guest death) is a kernel fault in every report", () => {
    const unnamed = {
      ...healthy,
      status: "failed" as const,
      splats: [
        {
          kind: "guest death",
          title: "the guest's QEMU exited during the run",
          excerpt: "sysrq: Resetting",
          during: "facts",
          source: "bookkeeping" as const,
        },
      ],
    };
    expect(archStatus(unnamed)).toBe("failed");
    expect(runFault(unnamed)).toBe("kernel");
    expect(judge(unnamed, "boot")).toEqual({
      verdict: "bad",
      reason: "kernel guest death during facts: the guest's QEMU exited during the run",
    });
    const r = wrap(unnamed);
    expect(summaryTable(r)).toMatch(
      /fault: kernel: the kernel under test misbehaved \(bisect: bad, as --type counts it\)/,
    );
    expect(toMarkdown(r)).toMatch(/\| fault \| kernel \|/);
    expect(matrixTable(r)).toMatch(/^fault\s+kernel$/m);
    expect(toJunit(r)).toMatch(/<failure type="kernel guest death" message="the guest's QEMU exited/);
  });

  it("the classes rank kernel over test over harness, and a passing run has none", () => {
    const passing = {
      ...run("x86_64-flaky-then-panic"),
      splats: [],
      problems: [],
      status: "passed" as const,
    };
    expect(runFault(passing)).toBeUndefined();
    // Nothing found and no result either: the run is an ERROR, and the fault is the harness's.
    expect(runFault(healthy)).toBe("harness");
    const slow = { ...healthy, harness: ["hrtimers are in low-resolution mode"] };
    expect(runFault(slow)).toBe("harness");
    const failing = {
      ...slow,
      tests: run("x86_64-flaky-then-panic").tests.map((t) => ({
        ...t,
        verdict: "fail" as const,
        reason: "x",
      })),
    };
    expect(runFault(failing)).toBe("test");
    expect(runFault({ ...failing, splats: boot.splats })).toBe("kernel");
    // What failed after an interruption follows from it.
    expect(
      runFault({
        ...healthy,
        tests: run("x86_64-flaky-then-panic").tests.map((t) => ({
          ...t,
          verdict: "fail" as const,
          afterInterruption: true,
        })),
        interrupted: "khil's whole run after 120 s",
      }),
    ).toBe("harness");
  });
});
