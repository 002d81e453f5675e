import { parseExitCode } from "./exit-code.ts";
import { parseKtap } from "./ktap.ts";
import { parseTestProgs } from "./test-progs.ts";
import type { ParsedRun } from "./types.ts";

export const PARSERS = ["test_progs", "ktap", "exit-code"] as const;
export type ParserName = (typeof PARSERS)[number];

/** A command's output read by the parser its suite names; `exit-code` judges by the code alone. */
export function parseOutput(
  parser: ParserName,
  command: string,
  code: number | null,
  text: string,
): ParsedRun {
  if (parser === "test_progs") return parseTestProgs(text);
  if (parser === "ktap") return parseKtap(text);
  return parseExitCode(command, code, text);
}
