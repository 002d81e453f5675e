import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { splatsByMarker } from "../src/parse/splats.ts";
import { splatFingerprint, stableTitle, topFrames } from "../src/report/fingerprint.ts";

const CONSOLES = join(import.meta.dirname, "fixtures/console");
const splatsOf = (name: string) =>
  splatsByMarker(readFileSync(join(CONSOLES, name), "utf8")).map((x) => x.splat);

describe("a splat's fingerprint", () => {
  it("is the same for the same bug reported again (another time, PID, task)", () => {
    // LKDTM's hung task is reported every check interval: three reports of one bug, at other times.
    const hung = splatsOf("x86_64-lkdtm-hung-task.log").filter((s) => s.kind === "hung-task");
    expect(hung.length).toBeGreaterThan(1);
    expect(new Set(hung.map(splatFingerprint)).size).toBe(1);
    expect(topFrames(hung[0]?.excerpt ?? "")).toEqual(["__schedule", "schedule", "lkdtm_HUNG_TASK"]);
  });

  it("differs between different bugs: every captured console's first report has its own", () => {
    const firsts = readdirSync(CONSOLES)
      .map((f) => splatsOf(f)[0])
      .filter((s) => s !== undefined);
    expect(firsts.length).toBeGreaterThan(8);
    expect(new Set(firsts.map(splatFingerprint)).size).toBe(firsts.length);
  });

  it("leaves out CPU, PID, addresses, offsets and line numbers, and unreliable frames where reliable ones exist", () => {
    expect(stableTitle("WARNING: CPU: 1 PID: 99 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0x6/0x89")).toBe(
      "WARNING: CPU: N PID: N at kernel/bpf/helpers.c:N bpf_timer_cb",
    );
    const trace = [
      "Call Trace:",
      " <IRQ>",
      " ? stale+0x1/0x2",
      " bpf_timer_cb+0x6/0x89",
      " __hrtimer_run_queues+0xc2/0x142",
      " </IRQ>",
      "Modules linked in:",
    ];
    expect(topFrames(trace.join("\n"))).toEqual(["bpf_timer_cb", "__hrtimer_run_queues"]);
    const a = {
      kind: "warning",
      title: "WARNING: CPU: 0 PID: 60 at kernel/bpf/helpers.c:1163 bpf_timer_cb+0xd/0xa0",
      excerpt: trace.join("\n"),
    };
    const b = { ...a, title: "WARNING: CPU: 1 PID: 61 at kernel/bpf/helpers.c:1170 bpf_timer_cb+0xf/0xa0" };
    expect(splatFingerprint(a)).toBe(splatFingerprint(b));
    expect(splatFingerprint(a)).not.toBe(
      splatFingerprint({ ...a, title: a.title.replace("helpers", "verifier") }),
    );
  });
});
