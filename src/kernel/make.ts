import { createWriteStream } from "node:fs";
import { execa } from "execa";
import { lineSplitter } from "../common/lines.ts";
import { track } from "../host/children.ts";

export interface MakeRun {
  exitCode: number | undefined;
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
  return { exitCode: r.exitCode, timedOut: r.timedOut };
}
