import { describe, expect, it } from "vitest";
import { allowList, splitCliTests } from "../src/run/selection.ts";
import { loadSuite } from "../src/run/suite.ts";
import { isBuildArtefact } from "../src/selftests/plan.ts";

describe("test_progs selection", () => {
  it("keeps the subtest part of a selection, so that only that subtest runs", () => {
    const toRun = ["timer", "timer_crash", "timer_lockup", "timer_mim"];
    expect(allowList(["timer_crash/hash"], toRun)).toEqual(["timer_crash/hash"]);
    expect(allowList(["timer*"], toRun)).toEqual(toRun);
    expect(allowList(["timer_c*/array", "timer_mim"], toRun)).toEqual(["timer_crash/array", "timer_mim"]);
  });

  it("leaves out tests denied or not listed", () => {
    expect(allowList(["timer*"], ["timer_mim"])).toEqual(["timer_mim"]);
  });
});

describe("selftests copy of a tree without git", () => {
  it("takes sources, never what an in-tree build left there", () => {
    const exec = 0o755;
    const file = 0o644;
    for (const f of [
      "prog_tests/timer.c",
      "progs/timer.c",
      "Makefile",
      "config",
      "DENYLIST.aarch64",
      "test_progs.c",
      "bpf_testmod/bpf_testmod.c",
      "ima_setup.sh",
    ])
      expect(isBuildArtefact(f, f.endsWith(".sh") ? exec : file), f).toBe(false);
    for (const [f, mode] of [
      ["test_progs", exec],
      ["urandom_read", exec],
      ["timer.bpf.o", file],
      ["timer.skel.h", file],
      ["timer.lskel.h", file],
      ["vmlinux.h", file],
      ["prog_tests/tests.h", file],
      ["bpf_testmod/bpf_testmod.ko", file],
      ["tools/sbin/bpftool", exec],
      ["no_alu32/test_progs", exec],
    ] as const)
      expect(isBuildArtefact(f, mode), f).toBe(true);
  });
});

describe("--test split between test_progs and khil's probe", () => {
  const suite = loadSuite("bpf-timer");

  it("gives the probe its subtests as arguments and test_progs the rest", () => {
    const s = splitCliTests(suite.commands, [
      "timer_crash/hash",
      "timer_probe/cancel",
      "timer_probe/usercnt",
    ]);
    expect(s.suite).toEqual(["timer_crash/hash"]);
    expect([...s.args]).toEqual([["timer_probe", ["cancel", "usercnt"]]]);
  });

  it("runs every check for the probe's bare name, and a glob reaches both commands", () => {
    expect([...splitCliTests(suite.commands, ["timer_probe", "timer_probe/cancel"]).args]).toEqual([
      ["timer_probe", []],
    ]);
    const s = splitCliTests(suite.commands, ["timer*"]);
    expect(s.suite).toEqual(["timer*"]);
    expect([...s.args]).toEqual([["timer_probe", []]]);
  });

  it("leaves the probe out when no pattern names it", () => {
    const s = splitCliTests(suite.commands, ["timer_mim"]);
    expect(s.suite).toEqual(["timer_mim"]);
    expect(s.args.size).toBe(0);
  });
});
