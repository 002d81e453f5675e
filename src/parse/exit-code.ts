import type { ParsedRun } from "./types.ts";

/** A command whose only verdict is its exit code: one test named after the command. */
export function parseExitCode(name: string, code: number | null, output: string): ParsedRun {
  const pass = code === 0;
  const log = pass ? "" : output.split("\n").slice(-60).join("\n").trimEnd();
  return { tests: [{ test: name, verdict: pass ? "pass" : "fail", log }], problems: [] };
}
