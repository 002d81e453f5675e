import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../src/host/paths.ts";
import { HOUR, khil, qemuLeftIn, resultsOf, runDirOf, verdictOf } from "../helpers.ts";

async function runSuite(suite: string, arch = "x86_64", extra: string[] = []) {
  const started = Date.now();
  const r = await khil([
    "boot-and-test",
    "--arch",
    arch,
    "--suite",
    `test/fixtures/suites/${suite}.yaml`,
    ...extra,
  ]);
  const seconds = (Date.now() - started) / 1000;
  const { dir, results } = resultsOf(r.stdout);
  return { r, dir, run: results.runs[0], qemuLeft: qemuLeftIn(dir).join(" "), seconds };
}

describe.each(["x86_64", "arm64"])("verdicts from real kernel faults (LKDTM), %s", (arch) => {
  it(
    "a WARNING fails the run although the command succeeded, with the splat recorded",
    async () => {
      const { r, run, dir } = await runSuite("lkdtm-warning", arch);
      expect(r.exitCode).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.tests[0]?.verdict).toBe("pass");
      const splat = run?.splats.find((s) => s.kind === "warning");
      expect(splat?.location).toMatch(/^drivers\/misc\/lkdtm\/bugs\.c:\d+$/);
      expect(splat?.during).toBe("command provoke-warning");
      expect(splat?.excerpt).toMatch(/Call [Tt]race:/);
      // A reliable trace (ORC on x86_64, frame records on arm64): the call chain's frames are not marked `? `
      // (ORC still lists, marked, stale return addresses it found on the stack beside the chain).
      expect(splat?.excerpt).toMatch(/^(\[[\s\d.]+\])?\s+direct_entry\+0x/m);
      // Decoded by the tree's own decode_stacktrace.sh against this kernel: file:line, paths from the tree.
      expect(splat?.decoded, splat?.decodeError).toMatch(
        /lkdtm_do_action \(drivers\/misc\/lkdtm\/core\.c:\d+/,
      );
      expect(r.stdout).toMatch(
        /decoded \(warning [0-9a-f]{12}\):\n(\s+.*\n)*\s+.*\(drivers\/misc\/lkdtm\/core\.c:\d+/,
      );
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("lkdtm_WARNING");
      // CI test reporters read junit.xml: the WARNING alone must turn them red.
      const junit = readFileSync(join(dir, "junit.xml"), "utf8");
      expect(junit).toMatch(
        /<testcase [^>]*name="kernel">\s*<failure type="kernel warning" message="WARNING: CPU: \d+ PID: \d+ at drivers\/misc\/lkdtm\/bugs\.c:\d+/,
      );
      expect(junit).toMatch(/failures="1"/);
    },
    HOUR,
  );

  it(
    "a panic ends the run with the panic recorded and no QEMU left",
    async () => {
      const { r, run, qemuLeft, dir } = await runSuite("lkdtm-panic", arch);
      expect(r.exitCode).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.splats.map((s) => s.kind)).toContain("panic");
      expect(run?.problems.join("\n")).toMatch(/ended without an exit code/);
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("Kernel panic - not syncing");
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );
});

describe("the kernel is watched for the guest's whole life, x86_64", () => {
  it(
    "a lockup during the rerun of a skipped test fails the run with the splat, charged to that rerun",
    async () => {
      const { r, run, qemuLeft } = await runSuite("rerun-lockup");
      expect(r.exitCode, r.all).toBe(1);
      expect(run?.status).toBe("failed");
      const splat = run?.splats.find((s) => s.kind === "soft-lockup");
      expect(splat?.during).toBe("lockme (skipped, attempt 2)");
      expect(run?.tests.find((t) => t.test === "lockme")?.verdict).toBe("skip");
      // Stopped by the lockup, well before the command's own 300 s deadline (the commands' stage alone: a
      // kernel built first on a cold cache is no part of it).
      expect(run?.timings.run ?? Number.POSITIVE_INFINITY).toBeLessThan(200);
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );

  it(
    "a panic right after a flaky test's passing retry fails the run with the panic",
    async () => {
      const { r, run, dir, qemuLeft } = await runSuite("flaky-then-panic", "x86_64", [
        "--retries",
        "1",
        "--no-snapshot",
      ]);
      expect(r.exitCode, r.all).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.tests[0]).toMatchObject({ test: "wobbly", verdict: "flaky" });
      expect(run?.splats.map((s) => s.kind)).toContain("panic");
      expect(r.stdout).toMatch(/kernel panic: during wobbly \(failed, attempt 2\)/);
      expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(/<failure type="kernel panic"/);
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );

  it(
    "a test_progs killed mid-run (SIGKILL) names the test that was running and the ones that never ran",
    async () => {
      const { r, run, dir } = await runSuite("test-progs-killed");
      expect(r.exitCode, r.all).toBe(1);
      expect(run?.status).toBe("failed");
      const verdict = (name: string) => verdictOf(run, name);
      expect(verdict("timer")).toBe("pass");
      expect(verdict("timer_crash")).toBe("pass");
      expect(verdict("timer_lockup")).toBe("fail");
      expect(run?.tests.find((t) => t.test === "timer_lockup")?.reason).toBe(
        "test_progs was killed by SIGKILL (exit 137) while it ran",
      );
      expect(verdict("timer_mim")).toBe("notrun");
      expect(run?.problems).toContain(
        "test_progs was killed by SIGKILL (exit 137) while timer_lockup ran; not run: timer_mim",
      );
      expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(
        /name="timer_mim"[^>]*><failure type="notrun" message="not run: /,
      );
    },
    HOUR,
  );
});

describe("verdicts from lockups, hangs and deadlines, x86_64", () => {
  it(
    "a soft lockup is reported, its command stopped, the later commands not run",
    async () => {
      const { r, run, qemuLeft, seconds } = await runSuite("lkdtm-softlockup");
      expect(r.exitCode).toBe(1);
      expect(run?.status).toBe("failed");
      const splat = run?.splats.find((s) => s.kind === "soft-lockup");
      expect(splat?.title).toMatch(/soft lockup - CPU#\d+ stuck/);
      expect(splat?.during).toBe("command provoke-softlockup");
      expect(run?.problems.join("\n")).toMatch(
        /stopped command provoke-softlockup 10 s after the kernel reported a soft-lockup/,
      );
      expect(run?.problems.join("\n")).toMatch(/soft-lockup: after-the-lockup not run/);
      // Well before the command's own 300 s deadline.
      expect(seconds).toBeLessThan(200);
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );

  it(
    "a hung task is reported and its command stopped",
    async () => {
      const { r, run, qemuLeft, seconds } = await runSuite("lkdtm-hung-task");
      expect(r.exitCode).toBe(1);
      const splat = run?.splats.find((s) => s.kind === "hung-task");
      expect(splat?.title).toMatch(/INFO: task \S+ blocked for more than \d+ seconds/);
      expect(splat?.excerpt).toMatch(/lkdtm/);
      expect(run?.problems.join("\n")).toMatch(/stopped command provoke-hung-task/);
      expect(seconds).toBeLessThan(200);
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );

  it(
    "the whole run stops at its deadline, with the stage named and the results written",
    async () => {
      const { r, run, dir, qemuLeft, seconds } = await runSuite("sleeper");
      expect(r.exitCode).toBe(1);
      expect(run?.status).toBe("error");
      expect(run?.error).toEqual({
        stage: "run",
        message: "timeout: whole run after 90 s (stopped during run)",
        fault: "harness",
      });
      expect(run?.fault).toBe("harness");
      expect(seconds).toBeLessThan(150);
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("khil: guest ready");
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );

  it(
    "a guest whose SSH server never starts ends at the boot deadline with its console kept",
    async () => {
      // PID 1 is busybox's sleep instead of khil's init (arguments after `--` go to init), so no SSH
      // server ever starts.
      const { r, run, dir, qemuLeft, seconds } = await runSuite("sleeper", "x86_64", [
        "--append",
        "rdinit=/bin/busybox -- sleep 100000",
      ]);
      expect(r.exitCode).toBe(1);
      expect(run?.error?.stage).toBe("boot");
      expect(run?.error?.message).toMatch(/^timeout: boot-to-ssh after 20 s \(no readiness marker/);
      expect(seconds).toBeLessThan(90);
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("Run /bin/busybox as init process");
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );

  it(
    "--retries reports a test that fails once and then passes as flaky, apart from failed",
    async () => {
      const { r, run, dir } = await runSuite("flaky", "x86_64", ["--retries", "2", "--no-snapshot"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(run?.status).toBe("passed");
      expect(run?.tests[0]).toMatchObject({
        test: "fails-once",
        verdict: "flaky",
        reason: "failed, then passed on attempt 2",
      });
      expect(r.stdout).toMatch(/fails-once\s+FLAKY/);
      expect(readFileSync(join(dir, "test-x86_64-fails-once.log"), "utf8")).toMatch(
        /^failed\n[\s\S]*# khil: fails-once failed, attempt 2:\npassed$/m,
      );
    },
    HOUR,
  );

  it(
    "two boot-and-test runs started together both finish correctly",
    async () => {
      const [a, b] = await Promise.all([
        khil(["boot-and-test", "--arch", "x86_64"]),
        khil(["boot-and-test", "--arch", "x86_64"]),
      ]);
      expect(a.exitCode, a.all).toBe(0);
      expect(b.exitCode, b.all).toBe(0);
      const dirs = [a, b].map((r) => runDirOf(r.stdout));
      expect(dirs[0]).not.toBe(dirs[1]);
    },
    HOUR,
  );

  it(
    "a command that never returns is stopped at its deadline with a timeout verdict",
    async () => {
      const started = Date.now();
      const { r, run } = await runSuite("hang");
      expect(r.exitCode).toBe(1);
      expect(run?.problems).toContain("timeout: command never-returns after 5 s");
      expect(run?.tests[0]?.verdict).toBe("fail");
      expect(Date.now() - started).toBeLessThan(5 * 60_000);
    },
    HOUR,
  );

  it(
    "a kernel report no pattern knows still fails the run: the taint it leaves is read after the command",
    async () => {
      const ko = (
        await execa("bash", [join(projectRoot, "test/capture/splat-module.sh"), "--arch", "x86_64"], {
          cwd: projectRoot,
        })
      ).stdout.trim();
      const { r, run, dir } = await runSuite("unnamed-report", "x86_64", ["--push", ko]);
      expect(r.exitCode, r.all).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.tests.map((t) => `${t.test}:${t.verdict}`)).toEqual(["report:pass"]);
      expect(run?.problems).toEqual([]);
      // A kernel fault of its own kind, with the console's last lines: the report no pattern knows is in them.
      expect(run?.splats).toEqual([
        expect.objectContaining({
          kind: "unrecognised report",
          title: expect.stringMatching(
            /^the kernel tainted itself \(W: \/proc\/sys\/kernel\/tainted \d+\) without a report khil recognises/,
          ),
          during: "command report",
          source: "bookkeeping",
          excerpt: expect.stringContaining("in words no pattern knows"),
        }),
      ]);
      expect(run?.fault).toBe("kernel");
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("in words no pattern knows");
      expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(
        /<failure type="kernel unrecognised report" message="the kernel tainted itself/,
      );
    },
    HOUR,
  );

  it(
    "a KTAP program that crashes before printing anything fails the run: no output is never an empty pass",
    async () => {
      const { r, run, dir } = await runSuite("crashes-before-output");
      expect(r.exitCode, r.all).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.problems).toContain("command crashes ended without an exit code (SIGSEGV)");
      expect(run?.problems).toContain("crashes printed no KTAP results (no exit code)");
      expect(readFileSync(join(dir, "junit.xml"), "utf8")).toMatch(
        /<failure type="problem" message="crashes printed no KTAP results/,
      );
    },
    HOUR,
  );

  it(
    "a guest that resets in silence mid-command fails the run (the kernel's doing, not khil's)",
    async () => {
      const { r, run, qemuLeft } = await runSuite("guest-resets");
      expect(r.exitCode, r.all).toBe(1);
      expect([run?.status, run?.error, run?.interrupted]).toEqual(["failed", undefined, undefined]);
      expect(run?.problems).toContain("command resets ended without an exit code (connection lost)");
      expect(run?.splats.map((x) => `${x.kind}: ${x.title}`).join("\n")).toMatch(
        /^guest death: (the guest's QEMU exited during the run|the guest did not answer over SSH after the last command)/,
      );
      expect(run?.fault).toBe("kernel");
      expect(qemuLeft).toBe("");
    },
    HOUR,
  );
});

describe("what a command prints reaches the parser whole, x86_64", () => {
  it(
    "stderr written in the middle of a result line neither breaks the line nor loses the result",
    async () => {
      const { r, run, dir } = await runSuite("stderr-mid-line");
      expect(r.exitCode, r.all).toBe(0);
      expect(run?.problems).toEqual([]);
      for (const t of ["timer", "timer_crash", "timer_lockup", "timer_mim"])
        expect(verdictOf(run, t), t).toBe("pass");
      const log = readFileSync(join(dir, "test-x86_64-test_progs.log"), "utf8");
      // Each stream's lines whole in the log: the result lines as test_progs wrote them, BusyBox's apart.
      expect(log).toMatch(/^#\d+\s+timer_mim:OK$/m);
      expect(log).toMatch(/^BusyBox v1\.35\.0 .*multi-call binary\.$/m);
    },
    HOUR,
  );
});

describe("a suite's own guest userland, x86_64", () => {
  it(
    "a suite's image: adds Debian packages' programs to the guest (iproute2's ip, with network namespaces)",
    async () => {
      const { r, run, dir } = await runSuite("image-iproute2");
      expect(r.exitCode, r.all).toBe(0);
      expect(verdictOf(run, "netns")).toBe("pass");
      const log = readFileSync(join(dir, "test-x86_64-netns.log"), "utf8");
      expect(log).toMatch(/^khil\b/m);
      expect(log).toMatch(/tc utility, iproute2-/);
    },
    HOUR,
  );
});
