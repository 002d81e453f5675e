import { existsSync, readFileSync } from "node:fs";

/**
 * Whether work recorded in `file` was done for exactly `key` (and its output is still there): the check
 * behind every "skip, nothing changed" of khil's own. No key means the inputs cannot be named: do the work.
 */
export function keyFileMatches(file: string, key: string | undefined, output: string): boolean {
  return key !== undefined && existsSync(output) && existsSync(file) && readFileSync(file, "utf8") === key;
}
