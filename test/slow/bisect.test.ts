import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../src/host/paths.ts";
import { HOUR } from "../helpers.ts";
import { makeRepo, type Plant } from "./git-tree.ts";

const COMMITS = 16;
const BREAKING = 11;

const NO_HASH_TIMER_CALLBACKS: Plant = {
  file: "kernel/bpf/helpers.c",
  from: "\tcallback_fn((u64)(long)map, (u64)(long)key, (u64)(long)value, 0, 0);",
  to: "\tif (map->map_type == BPF_MAP_TYPE_ARRAY)\n\t\tcallback_fn((u64)(long)map, (u64)(long)key, (u64)(long)value, 0, 0);",
  subject: "bpf: only run timer callbacks of array maps",
};

const PANIC_AT_BOOT: Plant = {
  file: "init/main.c",
  from: "\tkernel_init_freeable();\n",
  to: '\tkernel_init_freeable();\n\tpanic("khil: planted boot panic");\n',
  subject: "init: panic before running init",
};

describe("khil bisect (slow tier: npm run test:slow)", () => {
  it(
    `names the commit that broke the timer tests among ${COMMITS}, leaving the tree as found`,
    async () => {
      const { repo, env, shas } = await makeRepo("bisect-test", NO_HASH_TIMER_CALLBACKS, COMMITS, BREAKING);
      const r = await execa(
        "node",
        [
          join(projectRoot, "bin/khil.js"),
          "bisect",
          "--tree",
          repo,
          "--good",
          "HEAD~16",
          "--bad",
          "HEAD",
          "--arch",
          "x86_64",
        ],
        {
          reject: false,
          all: true,
          env,
        },
      );
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout).toContain(
        `first bad commit: ${shas[BREAKING - 1]} bpf: only run timer callbacks of array maps`,
      );
      const file = /^bisect: (\S+bisect\.json)$/m.exec(r.stdout)?.[1] ?? "";
      expect(existsSync(file)).toBe(true);
      const report = JSON.parse(readFileSync(file, "utf8"));
      // Two end checks, the bisect steps, and the parent if bisect had not tested it.
      const bisectSteps = report.steps.filter(
        (s: { commit: string }) => s.commit !== report.good && s.commit !== report.bad,
      );
      expect(bisectSteps.length).toBeLessThanOrEqual(Math.ceil(Math.log2(COMMITS)) + report.skips + 1);
      // Each commit between the ends changes documentation only, or is the breaking one, whose kernel the bad
      // end already has: the image and test files match an end's, whose verdict the step takes unbooted.
      for (const s of bisectSteps) {
        expect(s.reused?.commit, `${s.commit}: ${s.reason}`).toMatch(
          new RegExp(`^(${report.good}|${report.bad})$`),
        );
        expect(s.timings.boot, s.commit).toBeUndefined();
      }
      expect(report.medianStepRatio).toBeGreaterThan(0);
      // The report for the list: the culprit in its subject, regzbot's line with its commit, 72 columns.
      const txt = readFileSync(join(file, "..", "report.txt"), "utf8");
      expect(txt.split("\n")[0]).toMatch(
        /^Subject: \[REGRESSION\] x86_64: .* since "bpf: only run timer callbacks of array maps"$/,
      );
      expect(txt).toContain(`#regzbot introduced: ${shas[BREAKING - 1]?.slice(0, 12)}`);
      // Every line of the body within 72 columns but the command to paste, whose long paths stay whole.
      const body = txt.split("\n").slice(1);
      const command = body.findIndex((l) => l.startsWith("  npx khil"));
      expect(body.filter((l, k) => l.length > 72 && (k < command || k > command + 4))).toEqual([]);
      const head = await execa("git", ["-C", repo, "symbolic-ref", "--short", "HEAD"]);
      expect(head.stdout.trim()).toBe("main");
      expect((await execa("git", ["-C", repo, "status", "--porcelain"])).stdout).toBe("");
    },
    2 * HOUR,
  );

  it(
    "--type boot names the commit whose kernel panics before SSH (a boot failure with a splat is bad)",
    async () => {
      const { repo, env, shas } = await makeRepo("bisect-test", PANIC_AT_BOOT, 8, 6);
      const r = await execa(
        "node",
        [
          join(projectRoot, "bin/khil.js"),
          "bisect",
          "--type",
          "boot",
          "--tree",
          repo,
          "--good",
          "HEAD~8",
          "--bad",
          "HEAD",
        ],
        { reject: false, all: true, env },
      );
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout).toContain(`first bad commit: ${shas[5]} ${PANIC_AT_BOOT.subject}`);
      expect(r.stdout).toMatch(
        /bad +\d+ s +init: panic before running init +\(kernel panic during boot: Kernel panic - not syncing: khil: planted boot panic/,
      );
    },
    2 * HOUR,
  );
});
