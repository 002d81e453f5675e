#!/usr/bin/env node
// A clean clone needs no build step: the TypeScript sources run through tsx. Its loader hooks cost ~0.8 s of
// every start (a third of a warm boot-to-SSH), so the esbuild bundle harness/bootstrap.sh makes runs instead
// whenever it is newer than every source file.
import { readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bundle = `${root}dist/khil.mjs`;

function bundleIsFresh() {
  let built;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {
    return false;
  }
  const src = `${root}src`;
  return readdirSync(src, { recursive: true }).every((f) => statSync(`${src}/${f}`).mtimeMs < built);
}

if (bundleIsFresh()) await import(bundle);
else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli/main.ts");
}
