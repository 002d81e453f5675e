import { join } from "node:path";
import { execa } from "execa";
import { projectRoot } from "../../src/host/paths.ts";

/** Runs the real CLI as a user would, capturing everything. */
export function khil(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}) {
  return execa("node", [join(projectRoot, "bin", "khil.js"), ...args], {
    cwd: projectRoot,
    reject: false,
    all: true,
    timeout: opts.timeoutMs ?? 60 * 60_000,
    env: { FORCE_COLOR: "0", ...opts.env },
  });
}

export const HOUR = 60 * 60_000;
