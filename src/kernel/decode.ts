/**
 * A splat's trace decoded by the tree's own `scripts/decode_stacktrace.sh` against the run's vmlinux (khil's
 * kernels carry DWARF, which BTF needs): each frame's file:line, inlined frames expanded, paths relative to
 * the tree. As NIPA does for every splat; kunit.py only prints the command. Cached per kernel (by vmlinux and
 * excerpt), and bounded: a decode that fails or takes too long is noted, never in the way of a verdict.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { crossPrefix } from "../arch/toolchain.ts";
import { RESOLVED_FRAME } from "../parse/splats.ts";
import type { KernelBuild } from "./kbuild.ts";

/** Enough for addr2line over a long trace on a busy host (8 s measured on one); more is a stuck tool. */
const DECODE_TIMEOUT_MS = 60_000;

/** kbuild's out-of-tree object directory shows in DWARF paths as `obj/../`: the tree's own path is what is left. */
export function treeRelative(decoded: string): string {
  return decoded.replace(/(?<=^|[\s(])(?:\/[^\s()]*\/)?obj\/\.\.\//gm, "");
}

/**
 * The decoded excerpt, or why there is none. `modules` are the .ko files the guest was given (bpf_testmod):
 * a frame tagged `[bpf_testmod]` resolves against them; the kernel's own modules the script finds beside
 * vmlinux.
 */
export async function decodeTrace(
  arch: Arch,
  build: Pick<KernelBuild, "srcDir" | "vmlinux">,
  excerpt: string,
  modules: readonly string[] = [],
): Promise<{ decoded: string } | { error: string }> {
  const script = join(build.srcDir, "scripts", "decode_stacktrace.sh");
  if (!existsSync(script)) return { error: `the tree has no scripts/decode_stacktrace.sh` };
  if (!existsSync(build.vmlinux)) return { error: `no vmlinux at ${build.vmlinux}` };
  const key = createHash("sha256")
    .update(`${build.vmlinux}\n${statSync(build.vmlinux).mtimeMs}\n${excerpt}`)
    .update(
      modules
        .filter((m) => existsSync(m))
        .map((m) => `${m} ${statSync(m).mtimeMs}\n`)
        .join(""),
    )
    .digest("hex")
    .slice(0, 24);
  const cacheDir = join(build.vmlinux, "..", ".khil-decoded");
  const cached = join(cacheDir, `${key}.txt`);
  if (existsSync(cached)) return { decoded: readFileSync(cached, "utf8") };
  // coreutils' timeout signals the script's whole process group: the addr2line and nm it runs in subshells
  // too (execa's own timeout ends bash alone, then waits for them).
  const s = DECODE_TIMEOUT_MS / 1000;
  // The script takes one directory to search for modules: the guest's, gathered under their own names.
  const modDir = modules.length ? mkdtempSync(join(tmpdir(), "khil-modules-")) : undefined;
  for (const m of modules)
    if (modDir && existsSync(m) && !existsSync(join(modDir, basename(m))))
      symlinkSync(m, join(modDir, basename(m)));
  const args = [script, build.vmlinux, build.srcDir, ...(modDir ? [modDir] : [])];
  const r = await execa("timeout", ["-k", "5", String(s), "bash", ...args], {
    input: excerpt,
    reject: false,
    env: { CROSS_COMPILE: crossPrefix(arch) },
  }).finally(() => modDir && rmSync(modDir, { recursive: true, force: true }));
  if (r.exitCode === 124 || r.exitCode === 137) return { error: `decode_stacktrace.sh took over ${s} s` };
  if (r.exitCode !== 0)
    return {
      error: `decode_stacktrace.sh ${r.exitCode === undefined ? `did not run: ${r.shortMessage}` : `exited ${r.exitCode}: ${r.stderr.trim().split("\n").pop() ?? ""}`}`,
    };
  const decoded = treeRelative(r.stdout);
  // A trace it could not resolve comes back as it went in: that is no decoding.
  if (!RESOLVED_FRAME.test(decoded)) return { error: "no frame resolved to a file and line" };
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(cached, decoded);
  } catch {
    // A cache that cannot be written (read-only, full) only costs decoding it again next time.
  }
  return { decoded };
}
