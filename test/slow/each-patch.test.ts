import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { EachPatchReport } from "../../src/bisect/each-patch.ts";
import { resolveTree } from "../../src/kernel/tree.ts";
import { HOUR, khil, runDirOf } from "../helpers.ts";
import { formatPatches, TIMER_EDITS } from "../series.ts";

/** A three-patch series whose second patch stops hash and LRU timers' callbacks. */
async function regressionSeries(): Promise<string> {
  const [comment, , selftest] = TIMER_EDITS;
  if (!comment || !selftest) throw new Error("TIMER_EDITS changed");
  const breaking = {
    file: "kernel/bpf/helpers.c",
    from: "\tcallback_fn((u64)(long)map, (u64)(long)key, (u64)(long)value, 0, 0);",
    to: "\tif (map->map_type == BPF_MAP_TYPE_ARRAY)\n\t\tcallback_fn((u64)(long)map, (u64)(long)key, (u64)(long)value, 0, 0);",
    subject: "bpf: Run only array timers' callbacks",
  };
  const dir = mkdtempSync(join(tmpdir(), "khil-each-"));
  const mails = await formatPatches((await resolveTree({})).path, dir, [comment, breaking, selftest], {
    version: 1,
    cover: "bpf: A series with a regression in its second patch",
  });
  const mbox = join(dir, "regression.mbox");
  writeFileSync(mbox, mails.join("\n"));
  return mbox;
}

describe("a series with a regression in its second patch", () => {
  it(
    "--each-patch names the second patch as the first bad one",
    async () => {
      const mbox = await regressionSeries();
      const r = await khil([
        ...["boot-and-test", "--arch", "x86_64", "--series", mbox, "--each-patch", "--test", "timer"],
      ]);
      expect(r.exitCode, r.all).toBe(1);
      expect(r.stdout).toMatch(
        /^first bad: patch 2\/3 \[PATCH bpf-next v1 2\/3\] bpf: Run only array timers' callbacks \(failed: timer/m,
      );
      const report = JSON.parse(
        readFileSync(join(runDirOf(r.stdout), "each-patch.json"), "utf8"),
      ) as EachPatchReport;
      expect(report.patches.map((p) => p.step.verdict)).toEqual(["good", "bad", "bad"]);
      expect(report.firstBad?.index).toBe(2);
      // The report for the list names the patch and the one before it, and what to paste to reproduce.
      const txt = readFileSync(join(runDirOf(r.stdout), "report.txt"), "utf8");
      expect(txt.split("\n")[0]).toMatch(
        /^Subject: \[REGRESSION\] x86_64: timer fails since "\[PATCH bpf-next v1 2\/3\] bpf: Run only array timers' callbacks"$/,
      );
      expect(txt).toMatch(/--- timer at the patch before it: pass/);
      expect(txt).toMatch(/npx khil boot-and-test --arch x86_64 --series[\s\\]+\S+[\s\\]+--each-patch/);
    },
    2 * HOUR,
  );

  it(
    "bisect --series names the second patch, between the base and the last patch",
    async () => {
      const mbox = await regressionSeries();
      const r = await khil(["bisect", "--series", mbox, "--arch", "x86_64", "--test", "timer"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout).toMatch(/first bad commit: [0-9a-f]{40} bpf: Run only array timers' callbacks/);
    },
    2 * HOUR,
  );
});
