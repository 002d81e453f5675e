import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { resolveTree } from "../../src/kernel/tree.ts";
import { khil } from "../helpers.ts";

const mounts: string[] = [];

/**
 * A real small filesystem, mounted read-only or filled up, as a user's cache disk might be. Mounting needs
 * root (and a container that allows it); where it cannot, the test reports itself skipped, not passed.
 */
async function tmpfs(options: string): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), "khil-disk-"));
  const r = await execa("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { reject: false });
  if (r.exitCode !== 0) return undefined;
  mounts.push(dir);
  return dir;
}

afterAll(async () => {
  for (const m of mounts) await execa("umount", [m], { reject: false });
});

describe("bad input: one line, exit code 2, nothing half-done", () => {
  it("a read-only cache directory", async (ctx) => {
    const ro = await tmpfs("ro,size=1m");
    if (!ro) return ctx.skip("cannot mount a tmpfs here");
    const r = await khil(["build"], { env: { KHIL_CACHE: join(ro, "cache") } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^khil: error: \S+\/cache cannot be created or written \(\w+\): set KHIL_CACHE to a writable directory$/,
    );
  });

  it("a full cache directory", async (ctx) => {
    const full = await tmpfs("size=64k");
    if (!full) return ctx.skip("cannot mount a tmpfs here");
    writeFileSync(join(full, "filler"), Buffer.alloc(64 * 1024));
    const r = await khil(["build"], { env: { KHIL_CACHE: join(full, "cache") } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(
      /^khil: error: \S+\/cache is full \(ENOSPC\): free space there or set KHIL_CACHE to a directory with 3 GiB free$/,
    );
  });

  it("a kernel tree that was built in place", async () => {
    const packaged = await resolveTree({});
    const tree = mkdtempSync(join(tmpdir(), "khil-tree-"));
    try {
      // Hard links: a real copy of the packaged tree in seconds, without touching the original.
      await execa("cp", ["-al", `${packaged.path}/.`, tree]);
      writeFileSync(join(tree, ".config"), "CONFIG_64BIT=y\n");
      mkdirSync(join(tree, "include", "config"), { recursive: true });
      const r = await khil(["build", "--tree", tree]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trim()).toBe(
        `khil: error: --tree ${tree} has build artefacts of its own (.config, include/config): khil builds out of tree; run 'make mrproper' in it first`,
      );
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  }, 120_000);

  it("option values that are not numbers", async () => {
    const r = await khil(["boot-and-test", "--retries", "-1"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("option '--retries <n>' argument '-1' is invalid. must be a whole number");
    const t = await khil(["boot-and-test", "--timeout", "soon"]);
    expect(t.exitCode).toBe(2);
    expect(t.stderr).toContain("option '--timeout <s>' argument 'soon' is invalid");
  });

  it("--engine lava without a lab, a token, or a readable token file", async () => {
    const noLab = await khil(["matrix", "--engine", "lava"]);
    expect(noLab.exitCode).toBe(2);
    expect(noLab.stderr.trim()).toBe(
      "khil: error: --engine lava needs --lava URL: the LAVA server to submit to",
    );
    const noToken = await khil(["boot-and-test", "--engine", "lava", "--lava", "http://127.0.0.1:8000"]);
    expect(noToken.exitCode).toBe(2);
    expect(noToken.stderr.trim()).toBe(
      "khil: error: --engine lava needs --token-file FILE, $KHIL_LAVA_TOKEN or --token TOKEN (make one with: lava-server manage tokens add --user USER)",
    );
    const missing = await khil([
      "matrix",
      "--engine",
      "lava",
      "--lava",
      "http://x",
      "--token-file",
      "/nonexistent",
    ]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.trim()).toBe("khil: error: --token-file /nonexistent cannot be read (ENOENT)");
    const open = join(mkdtempSync(join(tmpdir(), "khil-token-")), "token");
    writeFileSync(open, "secret\n", { mode: 0o644 });
    const shared = await khil(["matrix", "--engine", "lava", "--lava", "http://x", "--token-file", open]);
    expect(shared.exitCode).toBe(2);
    expect(shared.stderr.trim()).toBe(
      `khil: error: --token-file ${open} can be read by others (mode 644): chmod 600 ${open}`,
    );
  });

  it("--push of a file that is not there, before any build", async () => {
    const r = await khil(["exec", "--push", "/nonexistent/m.ko", "--", "true"]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe("khil: error: --push: /nonexistent/m.ko: no such file");
  });
});
