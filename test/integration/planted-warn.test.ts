import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Results } from "../../src/report/results.ts";
import { launchChromium } from "../browser.ts";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";
import { plantedWarnMbox } from "../series.ts";

const lkdtmFingerprint = (
  JSON.parse(
    readFileSync(join(import.meta.dirname, "../fixtures/results/arm64-lkdtm-warning.json"), "utf8"),
  ) as Results
).runs[0]?.splats[0]?.fingerprint;

describe.each(["x86_64", "arm64"])("a WARN planted in bpf_timer_cb by a patch, %s", (arch) => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(() => browser?.close());

  it(
    "is decoded to kernel/bpf/helpers.c:<line> in the terminal, results.json, JUnit and report.html, with one fingerprint for both runs",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "khil-warn-"));
      const mbox = await plantedWarnMbox(dir);
      // Two runs of the same broken kernel: the second boots the kernel the first one built.
      const r = await khil([
        ...["boot-and-test", "--arch", arch, "--series", mbox, "--test", "timer", "--repeat", "2"],
      ]);
      const { dir: runDir, results } = resultsOf(r.stdout);
      expect(r.exitCode, r.all).toBe(1);
      expect(qemuLeftIn(runDir)).toEqual([]);
      expect(results.runs).toHaveLength(2);
      const splats = results.runs.map((run) => run.splats.find((s) => s.kind === "warning"));
      for (const [i, run] of results.runs.entries()) {
        const s = splats[i];
        expect(run.status).toBe("failed");
        expect(run.fault).toBe("kernel");
        expect(s?.location).toMatch(/^kernel\/bpf\/helpers\.c:\d+$/);
        expect(s?.decoded, s?.decodeError).toMatch(/bpf_timer_cb \(kernel\/bpf\/helpers\.c:\d+/);
        // A reliable trace: the hrtimer's call chain into bpf_timer_cb is not marked `? ` by the unwinder.
        expect(s?.excerpt).toMatch(/^(\[[\s\d.]+\])?\s+__hrtimer_run_queues\+0x/m);
        expect(s?.excerpt).not.toMatch(/^(\[[\s\d.]+\])?\s+\? __hrtimer_run_queues\+0x/m);
      }
      // The same bug twice, the same fingerprint; another bug (LKDTM's WARNING) another.
      const fp = splats[0]?.fingerprint;
      expect(fp).toMatch(/^[0-9a-f]{12}$/);
      expect(splats[1]?.fingerprint).toBe(fp);
      expect(fp).not.toBe(lkdtmFingerprint);
      // The terminal: the decoded chain under the finding, with bpf_timer_cb's file and line, no `?` frame.
      const block = new RegExp(`decoded \\(warning ${fp}\\):\\n((?:\\s{6}.*\\n)+)`).exec(r.stdout)?.[1] ?? "";
      expect(block, r.stdout).toMatch(/bpf_timer_cb \(kernel\/bpf\/helpers\.c:\d+/);
      expect(block).not.toMatch(/^\s*\? /m);
      const junit = readFileSync(join(runDir, "junit.xml"), "utf8");
      expect(junit).toMatch(
        /<failure type="kernel warning" [^>]*fingerprint [0-9a-f]{12}[^>]*>[^<]*bpf_timer_cb \(kernel\/bpf\/helpers\.c:\d+/,
      );
      const page = await browser.newPage();
      await page.goto(`file://${join(runDir, "report.html")}`);
      expect(await page.textContent("#verdict")).toBe("FAILED");
      expect(await page.$$eval(".splat pre.decoded", (p) => p.map((x) => x.textContent ?? ""))).toEqual([
        expect.stringMatching(/bpf_timer_cb \(kernel\/bpf\/helpers\.c:\d+/),
        expect.stringMatching(/bpf_timer_cb \(kernel\/bpf\/helpers\.c:\d+/),
      ]);
      await page.close();
    },
    HOUR,
  );
});
