/** khil's own probes: directories of probes/, each built by the selftests Makefile through its probe.mk. */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../host/paths.ts";

export const PROBES_DIR = join(projectRoot, "probes");

export function probeNames(): string[] {
  return existsSync(PROBES_DIR) ? readdirSync(PROBES_DIR).sort() : [];
}

/** The probes' sources, in a fixed order: part of what the build's key says was built. */
export function probeSources(probes: readonly string[]): string {
  const h = createHash("sha256");
  for (const p of probes)
    for (const f of readdirSync(join(PROBES_DIR, p)).sort())
      h.update(`${p}/${f}\0`).update(readFileSync(join(PROBES_DIR, p, f)));
  return h.digest("hex");
}
