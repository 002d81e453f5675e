import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { resolveTree } from "../../src/kernel/tree.ts";
import { HOUR, khil } from "../helpers.ts";

describe("khil build", () => {
  it.each(["x86_64", "arm64"])(
    "builds a %s kernel from the default tree, and a second run compiles nothing",
    async (arch) => {
      const first = await khil(["build", "--arch", arch, "--json"]);
      expect(first.exitCode, first.all).toBe(0);
      const build = JSON.parse(first.stdout);
      expect(existsSync(build.bootImage)).toBe(true);
      expect(build.release).toMatch(/^6\.12\./);
      const started = Date.now();
      const again = await khil(["build", "--arch", arch]);
      expect(again.exitCode, again.all).toBe(0);
      expect(again.stderr).toContain("up to date, nothing compiled");
      expect(Date.now() - started).toBeLessThan(60_000);
    },
    HOUR,
  );

  it(
    "runs make again once a tree file is newer than the last build",
    async () => {
      const tree = (await resolveTree({})).path;
      const now = new Date();
      utimesSync(join(tree, "kernel/bpf/helpers.c"), now, now);
      const r = await khil(["build", "--arch", "x86_64"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stderr).toMatch(/building x86_64 kernel: [1-9]\d* objects compiled/);
      const again = await khil(["build", "--arch", "x86_64"]);
      expect(again.stderr).toContain("up to date, nothing compiled");
    },
    HOUR,
  );

  it(
    "builds a copy of the default tree at another path from ccache",
    async () => {
      // A user's checkout, a bisect repository or a series' worktree holds the same files at a new path: the
      // compiler must see the same command lines there, or ccache misses on nearly every file.
      const tree = (await resolveTree({})).path;
      const copy = join(dirname(tree), `copy-${process.pid}`, "linux");
      mkdirSync(dirname(copy), { recursive: true });
      try {
        await execa("cp", ["-al", tree, copy]);
        const r = await khil(["build", "--arch", "x86_64", "--tree", copy, "--json"]);
        expect(r.exitCode, r.all).toBe(0);
        const build = JSON.parse(r.stdout);
        expect(build.srcDir).not.toBe(JSON.parse((await khil(["build", "--json"])).stdout).srcDir);
        expect(build.ccache.hits + build.ccache.misses).toBeGreaterThan(1000);
        expect(build.ccache.misses, JSON.stringify(build.ccache)).toBeLessThan(build.ccache.hits / 50);
        rmSync(build.srcDir, { recursive: true, force: true });
      } finally {
        rmSync(dirname(copy), { recursive: true, force: true });
      }
    },
    HOUR,
  );

  it("stops before compiling when a requested option's dependency is off, naming it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "khil-frag-"));
    const frag = join(dir, "no-perf.config");
    writeFileSync(frag, "# CONFIG_PERF_EVENTS is not set\n");
    const r = await khil(["build", "--arch", "arm64", "--config", frag], { timeoutMs: 5 * 60_000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("nothing was compiled");
    expect(r.stderr).toMatch(/CONFIG_BPF_EVENTS=y requested but not set: depends on .*PERF_EVENTS is n/);
    expect(r.stderr).not.toContain("building arm64 kernel");
  }, 300_000);

  it("rejects bad input with one line and exit code 2", async () => {
    const arch = await khil(["build", "--arch", "riscv"]);
    expect(arch.exitCode).toBe(2);
    expect(arch.stderr.trim()).toBe("khil: error: unknown arch 'riscv': valid are arm64, s390x, x86_64");
    const tree = await khil(["build", "--tree", tmpdir()]);
    expect(tree.exitCode).toBe(2);
    expect(tree.stderr).toMatch(/not a Linux kernel tree/);
    const frag = await khil(["build", "--config", "/nonexistent.config"]);
    expect(frag.exitCode).toBe(2);
    expect(frag.stderr).toContain("cannot read config fragment /nonexistent.config");
  }, 120_000);
});
