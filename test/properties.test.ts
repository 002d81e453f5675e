/**
 * Every reader of outside input survives any input: random text, and real captured outputs mutated (lines
 * dropped, repeated, swapped, cut short, glued together, bytes flipped). No exception but the one a reader
 * documents (a KhilError naming what is wrong), no hang, and the invariants each reader promises.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KhilError } from "../src/common/errors.ts";
import { readMbox } from "../src/kernel/mails.ts";
import { selectSeries } from "../src/kernel/mbox.ts";
import { JobConsole, parseLavaLog, targetLines } from "../src/lava/console.ts";
import { parseKtap } from "../src/parse/ktap.ts";
import { parseMeasures } from "../src/parse/measures.ts";
import { splatsByMarker } from "../src/parse/splats.ts";
import { parseBookkeeping } from "../src/parse/taint.ts";
import { parseTestProgs, parseTestProgsJson } from "../src/parse/test-progs.ts";
import { loadSuite } from "../src/run/suite.ts";

const FIXTURES = join(import.meta.dirname, "fixtures");
const all = (dir: string) =>
  readdirSync(join(FIXTURES, dir)).map((f) => readFileSync(join(FIXTURES, dir, f), "latin1"));

/** Generated inputs per reader (a LAVA log a third of it: each is a whole job's YAML): docs/verdicts.md names these. */
const RUNS = 300;
/** Fewer for the mbox reader: each input costs a few git processes. */
const MAIL_RUNS = 100;

/**
 * `npm test` explores the same inputs every time (a red CI run can be rerun and looked at), from a seed that
 * KHIL_PROPERTY_SEED can change; KHIL_PROPERTY_SEED=random explores new ones.
 */
const SEED = process.env.KHIL_PROPERTY_SEED;
fc.configureGlobal(SEED === "random" ? {} : { seed: Number(SEED ?? 20261203) });
const VERDICTS = ["pass", "fail", "skip", "flaky", "notrun"];

/** A real output, mutated line by line: what a crash, a lost buffer or a shared console does to it. */
function mutated(sources: readonly string[]): fc.Arbitrary<string> {
  return fc
    .record({
      source: fc.constantFrom(...sources),
      ops: fc.array(
        fc.record({
          op: fc.constantFrom("drop", "repeat", "swap", "cut", "glue", "flip", "insert"),
          at: fc.nat(),
          junk: fc.string({ unit: "binary", maxLength: 40 }),
        }),
        { maxLength: 8 },
      ),
    })
    .map(({ source, ops }) => {
      const lines = source.split("\n");
      for (const { op, at, junk } of ops) {
        if (!lines.length) break;
        const i = at % lines.length;
        const line = lines[i] ?? "";
        if (op === "drop") lines.splice(i, 1);
        else if (op === "repeat") lines.splice(i, 0, line);
        else if (op === "swap") lines.splice(i, 2, lines[i + 1] ?? "", line);
        else if (op === "cut") lines.splice(i + 1);
        else if (op === "glue") lines.splice(i, 2, `${line}${lines[i + 1] ?? ""}`);
        else if (op === "flip") lines[i] = `${line.slice(0, at % (line.length + 1))}${junk}`;
        else lines.splice(i, 0, junk);
      }
      return lines.join("\n");
    });
}

const anyText = fc.oneof(fc.string({ unit: "binary", maxLength: 400 }), fc.string({ maxLength: 400 }));
const inputs = (sources: readonly string[]) => fc.oneof(anyText, mutated(sources));

describe("readers of outside input, on generated inputs", () => {
  it("test_progs text: no exception, and every result a known verdict", () => {
    fc.assert(
      fc.property(inputs(all("test_progs").filter((t) => !t.startsWith("{"))), (text) => {
        const run = parseTestProgs(text);
        for (const t of run.tests) expect(VERDICTS).toContain(t.verdict);
      }),
      { numRuns: RUNS },
    );
  });

  it("test_progs JSON: a result or a SyntaxError/TypeError for malformed JSON, nothing else", () => {
    fc.assert(
      fc.property(inputs(all("test_progs").filter((t) => t.startsWith("{"))), (text) => {
        try {
          parseTestProgsJson(text);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect(["SyntaxError", "TypeError"]).toContain((e as Error).name);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("KTAP: no exception, every result a known verdict, no more results than result lines", () => {
    fc.assert(
      fc.property(inputs(all("ktap")), (text) => {
        const run = parseKtap(text);
        for (const t of run.tests) expect(VERDICTS).toContain(t.verdict);
        const resultLines = text.split("\n").filter((l) => /(^|\s|#)(not ok|ok)\s+\d+/.test(l)).length;
        const planned = [...text.matchAll(/1\.\.(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
        // each test is a result line, a planned one never printed, or a test cut short by the output's end
        expect(run.tests.length).toBeLessThanOrEqual(resultLines + planned + text.split("\n").length);
      }),
      { numRuns: RUNS },
    );
  });

  it("measures: no exception, and every measurement's figures finite numbers", () => {
    fc.assert(
      fc.property(inputs(all("ktap")), (text) => {
        for (const m of parseMeasures(text).measures)
          for (const v of [m.n, m.min, m.p50, m.p99, m.max]) expect(Number.isFinite(v)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("splats: no exception, and every splat's excerpt holds its title (a report glued mid-line is titled from where it starts)", () => {
    fc.assert(
      fc.property(inputs([...all("console"), ...all("dmesg")]), (text) => {
        for (const { splat } of splatsByMarker(text)) expect(splat.excerpt).toContain(splat.title);
      }),
      { numRuns: RUNS },
    );
  });

  it("the kernel's bookkeeping: a reading or undefined, never an exception", () => {
    fc.assert(
      fc.property(anyText, (text) => {
        const b = parseBookkeeping(text);
        if (b) expect(Number.isFinite(b.tainted)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("mbox: a series or a KhilError naming what is wrong, nothing else", async () => {
    // Each input goes through git mailsplit and one git mailinfo per mail, as a real --series does.
    await fc.assert(
      fc.asyncProperty(inputs(all("series")), async (text) => {
        try {
          selectSeries(await readMbox(Buffer.from(text, "latin1"), "gen.mbox", "gen.mbox"), "gen.mbox");
        } catch (e) {
          expect(e).toBeInstanceOf(KhilError);
        }
      }),
      { numRuns: MAIL_RUNS },
    );
  });

  it("a LAVA job log: entries or one Error saying what a job log is; the console follower never throws", () => {
    fc.assert(
      fc.property(inputs(all("lava")), (text) => {
        let entries: ReturnType<typeof parseLavaLog>;
        try {
          entries = parseLavaLog(text);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          return;
        }
        const con = new JobConsole(["khil-facts", "test_progs", "timer_probe"], {
          kernel: () => {},
          begin: () => {},
          output: () => {},
          end: () => {},
        });
        for (const { line, dt } of targetLines(entries)) con.feed(line, dt);
      }),
      { numRuns: RUNS / 3 },
    );
  });

  it("a LAVA job log of any YAML values: entries or that one Error", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 8 }), (values) => {
        const text = values.map((v) => `- ${JSON.stringify(v)}`).join("\n");
        targetLines(parseLavaLog(text));
      }),
      { numRuns: RUNS },
    );
  });

  it("suite files: a suite or a KhilError with file:line, nothing else", () => {
    const dir = mkdtempSync(join(tmpdir(), "khil-prop-"));
    const suites = readdirSync(join(import.meta.dirname, "..", "suites")).map((f) =>
      readFileSync(join(import.meta.dirname, "..", "suites", f), "utf8"),
    );
    let n = 0;
    fc.assert(
      fc.property(inputs(suites), (text) => {
        const f = join(dir, `s${n++}.yaml`);
        writeFileSync(f, text);
        try {
          loadSuite(f);
        } catch (e) {
          expect(e).toBeInstanceOf(KhilError);
          expect((e as Error).message.startsWith(f)).toBe(true);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
