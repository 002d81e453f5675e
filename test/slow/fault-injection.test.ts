import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOUR, khil, qemuLeftIn } from "../helpers.ts";
import { makeRepo, type Plant } from "./git-tree.ts";

/** A kernel that panics the first time anyone reads its taint mask, which khil does right after SSH answers. */
const PANIC_AFTER_SSH: Plant = {
  file: "kernel/sysctl.c",
  from: "\tif (write && !capable(CAP_SYS_ADMIN))\n\t\treturn -EPERM;\n",
  to: '\tif (!write)\n\t\tpanic("khil: planted panic on reading the taint mask");\n\tif (write && !capable(CAP_SYS_ADMIN))\n\t\treturn -EPERM;\n',
  subject: "sysctl: panic when the taint mask is read",
};

const suite = (name: string) => join(import.meta.dirname, "..", "fixtures", "suites", `${name}.yaml`);

/**
 * `git bisect run` trusts the step's exit code: 125 (skip) must mean "this commit cannot be judged", never a
 * kernel's fault, and a kernel fault must never be skipped. Each case injects the fault for real, into a
 * bisect-step on a real git tree: QEMU killed from outside, a run directory that fills up, khil's whole-run
 * deadline, and a kernel that panics just after SSH came up.
 */
describe("bisect-step under injected faults (slow tier: npm run test:slow)", () => {
  let repo: string;
  let env: Record<string, string>;
  let git: (...args: string[]) => Promise<unknown>;
  let runs: string;

  beforeAll(async () => {
    ({ repo, env, git } = await makeRepo("fault-test", PANIC_AFTER_SSH, 1, 1));
    await git("checkout", "-q", "--detach", "HEAD~1");
    runs = mkdtempSync(join(tmpdir(), "khil-faults-"));
    // The base kernel built once, so that each case's own deadline is spent on the guest.
    const b = await khil(["build", "--tree", repo, "--arch", "x86_64"], { env: { ...env, KHIL_RUNS: runs } });
    expect(b.exitCode, b.all).toBe(0);
  }, HOUR);

  afterAll(() => rmSync(runs, { recursive: true, force: true }));

  /** One bisect-step on what the tree has checked out, its runs in a directory of its own. */
  function step(name: string, args: string[], runsDir = join(runs, name)) {
    mkdirSync(runsDir, { recursive: true });
    const p = khil(["bisect-step", "--tree", repo, "--arch", "x86_64", ...args], {
      env: { ...env, KHIL_RUNS: runsDir },
    });
    const runDir = () => join(runsDir, readdirSync(runsDir)[0] ?? "");
    return { p, runDir };
  }

  it(
    "skips (125) when QEMU is killed with SIGKILL in the middle of a test",
    async () => {
      const { p, runDir } = step("sigkill", ["--suite", suite("sleeper"), "--timeout", "900"]);
      await new Promise<void>((resolve) =>
        p.stderr?.on("data", (d: Buffer) => {
          if (String(d).includes("running sleep 600")) resolve();
        }),
      );
      const [qemu] = qemuLeftIn(runDir());
      expect(qemu, "the step's QEMU").toBeDefined();
      process.kill(qemu as number, "SIGKILL");
      const r = await p;
      expect(r.exitCode, r.all).toBe(125);
      expect(r.stderr).toMatch(/bisect-step: \w+ skip: interrupted: .*SIGKILL/);
      expect(qemuLeftIn(runDir())).toEqual([]);
    },
    HOUR,
  );

  it(
    "skips (125) when the run directory fills up mid-command, keeping what it had written",
    async () => {
      const full = join(runs, "full");
      mkdirSync(full);
      await execa("mount", ["-t", "tmpfs", "-o", "size=6m", "khil-full", full]);
      try {
        const { p, runDir } = step("full", ["--suite", suite("floods")], full);
        const r = await p;
        expect(r.exitCode, r.all).toBe(125);
        expect(r.stderr).toMatch(/bisect-step: .*skip: .*(ENOSPC|is full)/);
        expect(readFileSync(join(runDir(), "console.log"), "utf8")).toContain("Linux version");
        expect(qemuLeftIn(runDir())).toEqual([]);
      } finally {
        await execa("umount", ["-l", full]);
      }
    },
    HOUR,
  );

  it(
    "skips (125) when khil's whole-run deadline falls in the middle of a command",
    async () => {
      const { p, runDir } = step("deadline", ["--suite", suite("sleeper"), "--timeout", "120"]);
      const r = await p;
      expect(r.exitCode, r.all).toBe(125);
      expect(r.stderr).toMatch(/bisect-step: \w+ skip: interrupted: .*whole run after 120 s/);
      expect(qemuLeftIn(runDir())).toEqual([]);
    },
    HOUR,
  );

  it(
    "answers bad (1) for a kernel that panics right after SSH came up",
    async () => {
      await git("checkout", "-q", "--detach", "main");
      const { p, runDir } = step("panic", ["--suite", suite("sleeper"), "--timeout", "900"]);
      const r = await p;
      expect(r.exitCode, r.all).toBe(1);
      expect(r.stderr).toMatch(/bisect-step: \w+ bad: kernel panic during \w+: .*planted panic on reading/);
      expect(qemuLeftIn(runDir())).toEqual([]);
    },
    HOUR,
  );
});
