import { copyFileSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { toKcidb } from "../src/report/kcidb.ts";
import type { Results } from "../src/report/results.ts";
import { khil } from "./helpers.ts";

/**
 * KCIDB's own schema, v5.3: exported from kernelci/kcidb-io (kcidb_io/schema/v05_03.py at 07cc1885a1ec,
 * `Version.json`, as its README says to), not written by hand. kcidb-io validates with Draft 7 and formats.
 */
const schema = JSON.parse(
  readFileSync(join(import.meta.dirname, "fixtures/kcidb/kcidb.v5.3.schema.json"), "utf8"),
);
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
const validate = ajv.compile(schema);

const FIXTURES = join(import.meta.dirname, "fixtures/results");
const fixture = (f: string) => JSON.parse(readFileSync(join(FIXTURES, f), "utf8")) as Results;

describe("khil report kcidb", () => {
  it.each(readdirSync(FIXTURES))("writes %s as KCIDB v5 that the schema accepts", (f) => {
    const out = toKcidb(fixture(f));
    expect(validate(out), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true);
    expect(out.builds).toHaveLength(fixture(f).runs.length);
  });

  it("a splat is an issue by its fingerprint, with an incident in each run it appeared in", () => {
    const one = fixture("arm64-lkdtm-warning.json");
    const twice: Results = { ...one, runs: [...one.runs, ...one.runs.map((r) => ({ ...r, id: "second" }))] };
    const out = toKcidb(twice);
    expect(validate(out)).toBe(true);
    const splats = one.runs.flatMap((r) => r.splats).length;
    expect(splats).toBeGreaterThan(0);
    expect(out.incidents).toHaveLength(2 * splats);
    expect(out.issues.length).toBeLessThanOrEqual(splats);
    expect(out.issues[0]).toMatchObject({ version: 1, culprit: { code: true } });
  });

  it("the schema refuses what KCIDB would (so the check above can fail)", () => {
    const out = toKcidb(fixture("x86_64-boot-panic.json"));
    expect(validate({ ...out, version: { major: 4 } })).toBe(false);
    expect(validate({ ...out, tests: [{ ...out.tests[0], path: "khil..x" }] })).toBe(false);
  });

  it("from the command line, on a run directory, and refuses an origin KCIDB would not take", async () => {
    const dir = mkdtempSync(join(tmpdir(), "khil-kcidb-"));
    copyFileSync(join(FIXTURES, "x86_64-flaky-then-panic.json"), join(dir, "results.json"));
    const r = await khil(["report", "kcidb", dir, "--origin", "my_lab"]);
    expect(r.exitCode, r.all).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(validate(out)).toBe(true);
    expect(out.builds[0].id).toMatch(/^my_lab:/);
    const bad = await khil(["report", "kcidb", dir, "--origin", "My-Lab"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toBe(
      "khil: error: --origin My-Lab: KCIDB takes lowercase letters, digits and _ only",
    );
  });
});
