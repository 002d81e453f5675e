import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KhilError } from "../common/errors.ts";
import type { Results } from "./results.ts";

/** Reads the results.json of run directories made anywhere (other machines, CI jobs). */
export function readRunDir(dir: string): Results {
  const file = join(dir, "results.json");
  if (!existsSync(file)) throw new KhilError(`${dir}: no results.json (is it a khil run directory?)`);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Results;
  } catch (e) {
    throw new KhilError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/** One report from many: every run keeps its cell name (or gets its directory's arch as one). */
export function mergeResults(parts: Results[], runDir: string): Results {
  const started = parts.map((p) => p.startedAt).sort()[0] ?? new Date().toISOString();
  return {
    khil: parts[0]?.khil ?? "",
    startedAt: started,
    finishedAt: "",
    runDir,
    runs: parts.flatMap((p) => p.runs),
  };
}
