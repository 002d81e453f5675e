import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BisectReport } from "../src/bisect/bisect.ts";
import type { StepRecord } from "../src/bisect/judge.ts";
import { fold, regressionReport, shellLines } from "../src/bisect/regression-report.ts";

const BAD = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0";
const PARENT = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c";

const step = (
  commit: string,
  verdict: StepRecord["verdict"],
  tests: StepRecord["tests"],
  reason: string,
): StepRecord => ({
  commit,
  subject: commit === BAD ? "bpf: only run timer callbacks of array maps" : "docs: a typo",
  verdict,
  reason,
  seconds: 60,
  runDir: "/nonexistent",
  tests,
  timings: {},
  raw: { make: 1, boot: 1, tests: 1, ratio: 1 },
});

/** The slow tier's bisect command (test/slow/bisect.test.ts) on a tree. */
const bisectCommand = (tree: string) => [
  "npx",
  "khil",
  "bisect",
  "--tree",
  tree,
  "--good",
  "HEAD~16",
  "--bad",
  "HEAD",
  "--arch",
  "x86_64",
];

/** The shape of the slow tier's bisect (test/slow/bisect.test.ts): a timer test broken by commit 11 of 16. */
const report: BisectReport = {
  tree: "/tmp/bisect-test",
  arch: "x86_64",
  good: "1111111111111111111111111111111111111111",
  bad: "2222222222222222222222222222222222222222",
  firstBad: { commit: BAD, subject: "bpf: only run timer callbacks of array maps" },
  steps: [
    step(
      BAD,
      "bad",
      [
        {
          name: "timer/timer_hash",
          verdict: "fail",
          log: `test_timer:FAIL:hash_timer unexpected hash_timer: actual 0 != expected 1\n${"x".repeat(120)}`,
        },
      ],
      "failed: timer/timer_hash",
    ),
  ],
  parent: step(PARENT, "good", [{ name: "timer/timer_hash", verdict: "pass" }], "selected tests passed"),
  stepCount: 6,
  skips: 1,
};

describe("report.txt after a bisect", () => {
  const text =
    regressionReport({
      report,
      suite: "bpf-timer",
      command: [...bisectCommand("/tmp/bisect-test"), "--test", "timer*"],
      splats: [
        {
          kind: "warning",
          title: "WARNING: CPU: 0 PID: 99 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0x6/0x89",
          excerpt:
            "WARNING: CPU: 0 PID: 99 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0x6/0x89\nCall Trace:\n bpf_timer_cb+0x6/0x89",
          during: "test timer/timer_hash",
          source: "console",
          fingerprint: "0123456789ab",
        },
      ],
    }) ?? "";

  it("is plain text in 72 columns, the culprit in its subject", () => {
    const [subject, ...body] = text.split("\n");
    expect(subject).toBe(
      'Subject: [REGRESSION] x86_64: timer/timer_hash fails since "bpf: only run timer callbacks of array maps"',
    );
    for (const l of body) expect(l.length, l).toBeLessThanOrEqual(72);
    expect(text).not.toMatch(/<[a-z]+>/);
  });

  it("names the culprit, its parent and the ends, with what failed at each", () => {
    expect(text).toContain(
      '  first bad commit: a1b2c3d4e5f6 ("bpf: only run timer callbacks of\n  array maps")',
    );
    expect(text).toContain("  its parent: 0f1e2d3c4b5a (good: selected tests passed)");
    expect(text).toContain("  bisected between 111111111111 (good) and 222222222222 (bad)");
    expect(text).toContain(
      "--- timer/timer_hash at a1b2c3d4e5f6: fail\n  test_timer:FAIL:hash_timer unexpected hash_timer: actual 0 != expected\n  +  1\n",
    );
    expect(text).toContain("--- timer/timer_hash at the parent 0f1e2d3c4b5a: pass");
    expect(text).toMatch(
      /during test timer\/timer_hash \(fingerprint\s0123456789ab\):\n {2}WARNING: CPU: 0 PID: 99 at kernel\/bpf\/helpers\.c:1163/,
    );
  });

  it("says how to reproduce, and ends with the lines the process expects", () => {
    expect(text).toMatch(
      /To reproduce, in a checkout of khil:\n\n {2}npx khil bisect --tree \/tmp\/bisect-test --good 'HEAD~16' --bad HEAD \\\n {4}--arch x86_64 --test 'timer\*'\n/,
    );
    expect(text).toMatch(
      /Reported-by: NAME <EMAIL>\nCloses: URL-OF-THE-REPORT\n\n#regzbot introduced: a1b2c3d4e5f6\n$/,
    );
  });

  it("keeps every line of the body within 72 columns whatever it is given, and the subject short", () => {
    const long = "x".repeat(150);
    const failing = Array.from({ length: 5 }, (_, i) => ({
      name: `${long}${i}`,
      verdict: "fail",
      log: long,
    }));
    const wide = regressionReport({
      report: {
        ...report,
        tree: `/very/long/${long}`,
        firstBad: { commit: BAD, subject: long },
        steps: [step(BAD, "bad", failing, long)],
        parent: step(PARENT, "good", [], long),
      },
      suite: long,
      command: ["npx", "khil", "bisect", "--tree", `/very/long/${long}`],
      splats: [],
    });
    const [subject, ...body] = (wide ?? "").split("\n");
    expect(subject).toMatch(/ and 3 more fail since /);
    // The command to reproduce stays pasteable: a word longer than a line is the one thing not cut.
    const command = body.findIndex((l) => l.startsWith("  npx khil"));
    for (const l of body.filter((_, i) => i < command || i > command + 1))
      expect(l.length, l).toBeLessThanOrEqual(72);
  });

  it("for --each-patch: names the patch by its subject and Message-ID, and claims no bisect's ends", () => {
    const series = regressionReport({
      report,
      suite: "bpf-timer",
      command: ["npx", "khil", "boot-and-test", "--series", "s.mbox", "--each-patch"],
      splats: [],
      patch: { index: 2, total: 3, messageId: "<20261204.2-bpf@example.org>" },
    });
    expect(series).toContain('  first bad patch: 2/3 "bpf: only run timer callbacks of array maps"');
    expect(series).toContain("    Message-ID: <20261204.2-bpf@example.org>");
    expect(series).toContain("--- timer/timer_hash at the patch before it: pass");
    expect(series).not.toMatch(/bisected between|#regzbot/);
  });

  it("is not written when the bisect named no culprit", () => {
    expect(
      regressionReport({ report: { ...report, firstBad: undefined }, suite: "s", command: [], splats: [] }),
    ).toBeUndefined();
  });

  it("folds prose and continues long commands so that they paste back as one", () => {
    expect(fold("a ".repeat(100)).every((l) => l.length <= 72)).toBe(true);
    expect(shellLines(["echo", "it's"])).toEqual(["  echo 'it'\\''s'"]);
    expect(shellLines(["echo", "=ls", "~root", "a=b"])).toEqual(["  echo '=ls' '~root' a=b"]);
  });

  it("from a real bisect (the slow tier's 16 commits, one breaking hash and LRU timers' callbacks)", () => {
    const real = JSON.parse(
      readFileSync(
        join(import.meta.dirname, "fixtures/bisect/x86_64-timer-callbacks-array-only.json"),
        "utf8",
      ),
    ) as BisectReport;
    const txt =
      regressionReport({
        report: real,
        suite: "bpf-timer",
        command: bisectCommand(real.tree),
        splats: [],
      }) ?? "";
    const [subject, ...body] = txt.split("\n");
    expect(subject).toBe(
      'Subject: [REGRESSION] x86_64: timer, timer_mim and 3 more fail since "bpf: only run timer callbacks of array maps"',
    );
    // The failing lines of test_progs' output, not the passing ones around them.
    expect(txt).toContain("  timer_mim:FAIL:ok unexpected ok: actual 0 != expected 3");
    expect(txt).toContain(`#regzbot introduced: ${real.firstBad?.commit.slice(0, 12)}`);
    const command = body.findIndex((l) => l.startsWith("  npx khil"));
    expect(body.filter((l, k) => l.length > 72 && (k < command || k > command + 4))).toEqual([]);
  });
});
