import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import type { Results } from "../../src/results.ts";
import { HOUR, khil } from "./helpers.ts";

async function qemuPids(): Promise<Set<string>> {
  const r = await execa("pgrep", ["-f", "^(setpriv .*)?qemu-system"], { reject: false });
  return new Set(r.stdout.split("\n").filter(Boolean));
}

async function runSuite(suite: string) {
  const before = await qemuPids();
  const r = await khil([
    "boot-and-test",
    "--arch",
    "x86_64",
    "--suite",
    `test/fixtures/suites/${suite}.yaml`,
  ]);
  const dir = /^results: (\S+)/m.exec(r.stdout)?.[1] ?? "";
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as Results;
  const left = [...(await qemuPids())].filter((p) => !before.has(p));
  return { r, dir, run: results.runs[0], qemuLeft: left.join(" ") };
}

describe("verdicts from real kernel faults (LKDTM) and deadlines, x86_64", () => {
  it(
    "a WARNING fails the run although the command succeeded, with the splat recorded",
    async () => {
      const { r, run, dir } = await runSuite("lkdtm-warning");
      expect(r.exitCode).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.tests[0]?.verdict).toBe("pass");
      const splat = run?.splats.find((s) => s.kind === "warning");
      expect(splat?.location).toMatch(/^drivers\/misc\/lkdtm\/bugs\.c:\d+$/);
      expect(splat?.during).toBe("command provoke-warning");
      expect(splat?.excerpt).toContain("Call Trace:");
      expect(readFileSync(join(dir, "console.log"), "utf8")).toContain("lkdtm_WARNING");
    },
    HOUR,
  );

  it(
    "a panic ends the run with the panic recorded and no QEMU left",
    async () => {
      const { r, run, qemuLeft } = await runSuite("lkdtm-panic");
      expect(r.exitCode).toBe(1);
      expect(run?.status).toBe("failed");
      expect(run?.splats.map((s) => s.kind)).toContain("panic");
      expect(run?.problems.join("\n")).toMatch(/ended without an exit code/);
      expect(qemuLeft).toBe("");
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
      const dirs = [a, b].map((r) => /^results: (\S+)/m.exec(r.stdout)?.[1]);
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
});
