import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadArch } from "../src/arch/arch.ts";
import { parseFacts } from "../src/guest/facts.ts";
import { casePattern, jobCommands, jobMinutes } from "../src/lava/cell-job.ts";
import { JobConsole, parseLavaLog, rerunAttempts, targetLines } from "../src/lava/console.ts";
import { guestWentAway } from "../src/lava/engine.ts";
import { CONSOLE_PROMPT, lavaJob } from "../src/lava/job.ts";
import { parseKtap } from "../src/parse/ktap.ts";
import { parseTestProgs } from "../src/parse/test-progs.ts";
import type { CellSpec } from "../src/run/cell.ts";
import { loadSuite } from "../src/run/suite.ts";
import { fixture } from "./helpers.ts";

describe("LAVA job definitions", () => {
  const job = (arch: string, jobMinutes = 30) =>
    parse(
      lavaJob({
        cell: `${arch}-6.12-bpf-timer-default`,
        arch: loadArch(arch),
        suite: "bpf-timer",
        kernelUrl: "http://lab/k",
        initrdUrl: "http://lab/i",
        cmdline: ["console=ttyAMA0", "panic=-1"],
        cpus: 2,
        commands: [
          { name: "test_progs", line: "mkdir -p /root/khil && cd /root/khil && ./test_progs -a 'timer*'" },
        ],
        jobMinutes,
        testMinutes: 10,
      }),
    );

  it("has no timeout above the job's own, which LAVA refuses (a short whole-run deadline)", () => {
    const short = job("x86_64", 2);
    const minutes = [
      short.timeouts.action,
      short.timeouts.connection,
      ...short.actions.map((a: Record<string, { timeout: unknown }>) => Object.values(a)[0]?.timeout),
    ].map((t) => (t as { minutes: number }).minutes);
    expect(short.timeouts.job).toEqual({ minutes: 2 });
    expect(Math.max(...minutes)).toBe(2);
  });

  it("takes the lab's QEMU context from the arch data, with the run's CPUs", () => {
    expect(job("arm64").context).toEqual({
      arch: "arm64",
      machine: "virt,gic-version=3",
      cpu: "max,pauth-impdef=on",
      extra_options: ["-no-reboot", "-smp 2"],
    });
    expect(job("x86_64").context.arch).toBe("amd64");
  });

  it("boots from tmpfs with khil's command line and a console shell, then types each command at its prompt", () => {
    const [deploy, boot, test] = job("arm64").actions;
    expect(deploy.deploy.images.kernel.image_arg).toBe(
      '-kernel {kernel} -append "console=ttyAMA0 panic=-1 khil.console=shell"',
    );
    expect(boot.boot.prompts).toEqual([CONSOLE_PROMPT]);
    const [step] = test.test.interactive[0].script;
    expect(step).toEqual({
      name: "test_progs",
      command:
        "echo khil-begin-test_progs; mkdir -p /root/khil && cd /root/khil && ./test_progs -a 'timer*'; echo khil-exit-test_progs=$?",
      successes: [{ message: "khil-exit-test_progs=0" }],
      failures: [{ message: "khil-exit-test_progs=[1-9][0-9]*" }],
    });
  });
});

describe("a LAVA job's log read back (a real job of the x86_64 bpf-timer cell, LAVA 2023.01)", () => {
  const entries = parseLavaLog(fixture("lava/x86_64-6.12-bpf-timer-job.yaml"));
  const names = ["khil-facts", "test_progs", "timer_probe"];
  const follow = (lines: { dt: string; line: string }[]) => {
    const kernel: string[] = [];
    const events: string[] = [];
    const con = new JobConsole(names, {
      kernel: (l) => kernel.push(l),
      begin: (n) => events.push(`begin ${n}`),
      output: () => {},
      end: (n, code) => events.push(`end ${n}=${code}`),
    });
    for (const { dt, line } of lines) con.feed(line, dt);
    return { con, kernel, events };
  };

  it("cuts the console into boot and each command's output between khil's markers", () => {
    const { con, kernel, events } = follow(targetLines(entries));
    expect(events).toEqual(names.flatMap((n) => [`begin ${n}`, `end ${n}=0`]));
    expect(kernel.some((l) => /Linux version 6\.12\.118/.test(l))).toBe(true);
    // The typed command lines the console echoes are the shell's, not a command's output.
    expect(kernel.some((l) => l.includes("echo khil-begin-test_progs;"))).toBe(true);
    const out = (n: string) => con.segments.get(n)?.lines.join("\n") ?? "";
    expect(parseFacts(out("khil-facts"))).toMatchObject({ release: "6.12.118", jit: "1", cpus: 2 });
    const tp = parseTestProgs(out("test_progs"));
    expect(tp.tests.filter((t) => !t.subtest).map((t) => `${t.test}:${t.verdict}`)).toEqual([
      "timer:pass",
      "timer_crash:pass",
      "timer_lockup:pass",
      "timer_mim:pass",
    ]);
    expect(parseKtap(out("timer_probe")).tests.find((t) => t.subtest === "cancel")?.verdict).toBe("pass");
  });

  it("hands a kernel line glued into a command's output line to the kernel watch, and keeps the output", () => {
    const glued = targetLines(entries).map((e) =>
      e.line.startsWith("#4 ") || /^#\d+\s+timer_mim:OK/.test(e.line)
        ? {
            ...e,
            line: `${e.line}[   12.345678] WARNING: CPU: 1 PID: 99 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0xd/0xa0`,
          }
        : e,
    );
    const { con, kernel } = follow(glued);
    expect(kernel).toContain(
      "[   12.345678] WARNING: CPU: 1 PID: 99 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0xd/0xa0",
    );
    const tp = parseTestProgs(con.segments.get("test_progs")?.lines.join("\n") ?? "");
    expect(tp.tests.find((t) => t.test === "timer_mim")?.verdict).toBe("pass");
  });

  it("a log cut off mid-command leaves that command running, without an exit code", () => {
    const lines = targetLines(entries);
    const cut = lines.findIndex((l) => l.line === "khil-exit-test_progs=0");
    const { con, events } = follow(lines.slice(0, cut));
    expect(events.at(-1)).toBe("begin test_progs");
    expect(con.running).toBe("test_progs");
    expect(con.segments.get("test_progs")?.code).toBeUndefined();
    expect(con.segments.has("timer_probe")).toBe(false);
  });
});

describe("a guest that went away under its LAVA job (a real job: sysrq reset mid-command, LAVA 2023.01)", () => {
  const read = (name: string, upTo?: (line: string) => boolean) => {
    const lines = targetLines(parseLavaLog(fixture(`lava/${name}`)));
    const end = upTo ? lines.findIndex((l) => upTo(l.line)) : lines.length;
    const con = new JobConsole(["khil-facts", "resets", "test_progs", "timer_probe", "khil-bookkeeping"], {
      kernel: () => {},
      begin: () => {},
      output: () => {},
      end: () => {},
    });
    for (const { line, dt } of lines.slice(0, end)) con.feed(line, dt);
    return con;
  };
  // What LAVA said of the real job: QEMU exiting reads as the lab's fault.
  const lab = "Infrastructure: Connection closed";

  it("is the kernel's failure, named by the command it ran, although LAVA blames its infrastructure", () => {
    expect(guestWentAway(read("x86_64-6.12-guest-resets-job.yaml"), lab)).toBe(
      "the guest's QEMU exited during command resets (LAVA: Infrastructure: Connection closed)",
    );
  });

  it("is the lab's when the guest never came up, or when the job failed for another reason", () => {
    const beforeFacts = read("x86_64-6.12-guest-resets-job.yaml", (l) => l === "khil-begin-khil-facts");
    expect(guestWentAway(beforeFacts, lab)).toBeUndefined();
    expect(
      guestWentAway(read("x86_64-6.12-guest-resets-job.yaml"), "Infrastructure: Unable to fetch kernel"),
    ).toBeUndefined();
  });

  it("is nothing in a job whose last command, the bookkeeping, answered", () => {
    expect(guestWentAway(read("x86_64-6.12-crashes-before-output-job.yaml"), lab)).toBeUndefined();
  });
});

describe("the commands of a bpf-timer job", () => {
  const suite = loadSuite("bpf-timer");
  const tp = suite.commands.find((c) => c.name === "test_progs");
  const toRun = ["timer", "timer_crash", "timer_lockup", "timer_mim"];
  const steps = tp ? jobCommands(tp, suite, { denied: [], toRun, allow: toRun, deny: [] }) : [];

  it("runs test_progs, then its inconclusive skips again alone, as shell the guest can parse", async () => {
    expect(steps.map((s) => s.name)).toEqual(["test_progs", "test_progs-rerun"]);
    expect(steps[0]?.line).toContain("./test_progs -a 'timer,timer_crash,timer_lockup,timer_mim' 2>&1 | tee");
    for (const s of steps) {
      const r = await execa("sh", ["-n", "-c", s.line], { reject: false });
      expect(r.stderr, s.line).toBe("");
    }
  });

  it("a command whose every test the deny list takes is not in the job, as it does not run locally", () => {
    const denied = toRun.map((test) => ({ test, reason: "r" }));
    expect(tp && jobCommands(tp, suite, { denied, toRun: [], allow: [], deny: [] })).toEqual([]);
  });

  it("a real job's rerun step (one CPU: timer_lockup skips each time) is read back attempt by attempt", () => {
    const lines = targetLines(parseLavaLog(fixture("lava/x86_64-6.12-bpf-timer-1cpu-job.yaml")));
    const con = new JobConsole(["khil-facts", ...steps.map((s) => s.name), "timer_probe"], {
      kernel: () => {},
      begin: () => {},
      output: () => {},
      end: () => {},
    });
    for (const { line } of lines) con.feed(line);
    const attempts = rerunAttempts(con.segments.get("test_progs-rerun")?.lines ?? []);
    expect([...attempts.keys()]).toEqual([2, 3, 4].map((i) => `timer_lockup skipped, attempt ${i}`));
    for (const out of attempts.values())
      expect(parseTestProgs(out).tests.map((t) => `${t.test}:${t.verdict}`)).toEqual(["timer_lockup:skip"]);
  });
});

describe("a suite's rerunSkipped tests in the job's shell", () => {
  it("stay globs there, and nothing else in them is shell", async () => {
    const sh = (pattern: string, name: string) =>
      execa("sh", ["-c", `case "$1" in ${casePattern(pattern)}) echo match;; *) echo no;; esac`, "sh", name]);
    expect((await sh("timer*", "timer_lockup")).stdout).toBe("match");
    expect((await sh("timer_lockup", "timer_mim")).stdout).toBe("no");
    const evil = "x) touch /tmp/khil-pwned;; y";
    expect((await sh(evil, evil)).stdout).toBe("match");
    expect((await sh(evil, "x")).stdout).toBe("no");
  });
});

describe("the LAVA job's timeout", () => {
  it("follows the deadlines a local run would have, not a fixed 30 minutes", () => {
    const spec = (suite: string, deadlines = {}) =>
      ({ suite: loadSuite(suite), machine: { deadlines } }) as unknown as CellSpec;
    // bpf-timer: boot 60 + push 120 + commands 600 + 300 + lab 300 s
    expect(jobMinutes(spec("bpf-timer"))).toBe(23);
    // a whole-run deadline shorter than that bounds it
    expect(jobMinutes(spec("bpf-timer", { total: 600 }))).toBe(10);
  });
});
