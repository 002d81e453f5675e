import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { archMakeVars, crossPrefix } from "../arch/toolchain.ts";
import { lineSplitter } from "../common/lines.ts";
import { track } from "../host/children.ts";
import { cacheDir } from "../host/paths.ts";

/**
 * What kbuild would otherwise stamp into the image from the clock, the user and the host. Fixed, the same
 * tree and config give the same bytes: a bisect step can tell that a commit left the kernel as it was, and
 * kbuild then runs pahole without `-j`, whose BTF (pahole < 1.27) changes from one link to the next and with
 * it vmlinux.h and every BPF program of the selftests.
 */
export const REPRODUCIBLE = [
  "KBUILD_BUILD_TIMESTAMP=2000-01-01 00:00:00 UTC",
  "KBUILD_BUILD_VERSION=1",
  "KBUILD_BUILD_USER=khil",
  "KBUILD_BUILD_HOST=khil",
];

/** make's variables and environment for building a kernel for `arch`, compiled through ccache. */
export function kernelMakeEnv(arch: Arch): { vars: string[]; env: NodeJS.ProcessEnv } {
  const cache = cacheDir();
  return {
    vars: [...archMakeVars(arch), `CC=ccache ${crossPrefix(arch)}gcc`, ...REPRODUCIBLE],
    // BASEDIR and NOHASHDIR let ccache hit across build directories (a new config key, a bisect step).
    env: {
      CCACHE_DIR: process.env.KHIL_CCACHE_DIR ?? join(cache, "ccache"),
      CCACHE_BASEDIR: cache,
      CCACHE_NOHASHDIR: "1",
      CCACHE_MAXSIZE: "20G",
    },
  };
}

export interface MakeRun {
  exitCode: number | undefined;
  /** The signal that ended make when it did not exit by itself (the OOM killer's SIGKILL). */
  signal?: string;
  timedOut: boolean;
}

/**
 * Runs make with its output appended to `logFile` and handed to `onLine` for progress. The deadline stops it
 * (SIGTERM, then SIGKILL), and it is tracked so that Ctrl-C or the whole run's deadline stop it too.
 */
export async function runMake(o: {
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  timeoutMs: number;
  onLine: (line: string) => void;
}): Promise<MakeRun> {
  const out = createWriteStream(o.logFile, { flags: "a" });
  const p = execa("make", o.args, {
    env: o.env,
    reject: false,
    all: true,
    buffer: false,
    timeout: o.timeoutMs,
  });
  track(p);
  const split = lineSplitter(o.onLine);
  p.all?.on("data", (chunk: Buffer) => {
    out.write(chunk);
    split(chunk);
  });
  const r = await p;
  await new Promise((res) => out.end(res));
  return { exitCode: r.exitCode, timedOut: r.timedOut, ...(r.signal ? { signal: r.signal } : {}) };
}
