#!/usr/bin/env node
// The sources are run as TypeScript through tsx so that a clean clone needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
