/** `--engine local|lava` and the lab's options, shared by matrix and boot-and-test. */
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, Option } from "commander";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { cacheDir } from "../host/paths.ts";
import { lavaTester } from "../lava/engine.ts";
import { type Engine, LOCAL } from "../matrix/runner.ts";
import type { Opts } from "./options.ts";

export function engineOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--engine <engine>", "where guests run: this machine, or a LAVA lab")
        .choices(["local", "lava"])
        .default("local"),
    )
    .option("--lava <url>", "the LAVA server (e.g. http://127.0.0.1:8000)")
    .option("--token <token>", "a LAVA API token (shows in ps: prefer --token-file or $KHIL_LAVA_TOKEN)")
    .option("--token-file <file>", "a file holding the LAVA API token")
    .option(
      "--artifacts <dir>",
      "where kernels and initramfs are put for the lab (default: $KHIL_CACHE/lava-artifacts)",
    )
    .option("--artifacts-url <url>", "the URL the lab fetches --artifacts at (default: file://DIR)");
}

export function engineOf(o: Opts): Engine {
  if (o.engine !== "lava") return LOCAL;
  if (!o.lava) throw new KhilError("--engine lava needs --lava URL: the LAVA server to submit to", 2);
  if (o.token)
    log(
      "warning: --token shows in every user's ps; --token-file FILE (mode 0600) or $KHIL_LAVA_TOKEN do not",
    );
  const token = o.token
    ? String(o.token)
    : o.tokenFile
      ? readToken(String(o.tokenFile))
      : process.env.KHIL_LAVA_TOKEN || undefined;
  if (!token)
    throw new KhilError(
      "--engine lava needs --token-file FILE, $KHIL_LAVA_TOKEN or --token TOKEN (make one with: lava-server manage tokens add --user USER)",
      2,
    );
  const artifacts = resolve(o.artifacts ? String(o.artifacts) : join(cacheDir(), "lava-artifacts"));
  const artifactsUrl = o.artifactsUrl ? String(o.artifactsUrl) : `file://${artifacts}/`;
  return { test: lavaTester({ url: String(o.lava), token, artifacts, artifactsUrl }), parallel: true };
}

/** A token file others can read is refused, as ssh refuses such a key: the token is the lab's admin. */
function readToken(file: string): string {
  try {
    const mode = statSync(file).mode & 0o077;
    if (mode)
      throw new KhilError(
        `--token-file ${file} can be read by others (mode ${(statSync(file).mode & 0o777).toString(8)}): chmod 600 ${file}`,
        2,
      );
    return readFileSync(file, "utf8").trim();
  } catch (e) {
    if (e instanceof KhilError) throw e;
    throw new KhilError(
      `--token-file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      2,
    );
  }
}
