import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadArch } from "../src/arch/arch.ts";
import { resolveTree } from "../src/kernel/tree.ts";
import {
  allowList,
  splitCliTests,
  splitDenied,
  testProgsSelection,
  testProgsSelectionArgs,
} from "../src/run/selection.ts";
import { loadSuite, selectTests, withFlavour } from "../src/run/suite.ts";
import { isBuildArtefact } from "../src/selftests/plan.ts";
import {
  parseDenylist,
  treeConfigFragments,
  treeDenylist,
  treeFlavours,
  unknownFlavour,
} from "../src/selftests/tree-lists.ts";

const fixtures = join(import.meta.dirname, "fixtures", "tree-lists");

describe("the tree's own BPF selftests lists", () => {
  // DENYLIST.aarch64 as the packaged 6.12 tree has it.
  const aarch64 = parseDenylist(
    readFileSync(join(fixtures, "6.12-DENYLIST.aarch64"), "utf8"),
    "DENYLIST.aarch64",
  );

  it("reads each entry with its file, line and the comment that says why", () => {
    expect(aarch64[0]).toEqual({
      pattern: "bpf_cookie/multi_kprobe_attach_api",
      reason:
        "DENYLIST.aarch64:1: kprobe_multi_link_api_subtest:FAIL:fentry_raw_skel_load unexpected error: -3",
    });
    expect(aarch64.find((d) => d.pattern === "kprobe_multi_test")?.reason).toBe(
      "DENYLIST.aarch64:4: needs CONFIG_FPROBE",
    );
    const generic = parseDenylist(readFileSync(join(fixtures, "6.12-DENYLIST"), "utf8"), "DENYLIST");
    // Comment lines are not entries; an entry without a comment still names where it came from.
    expect(generic.map((d) => d.pattern)).toEqual([
      "get_stack_raw_tp",
      "stacktrace_build_id",
      "stacktrace_build_id_nmi",
      "task_fd_query_rawtp",
      "varlen",
    ]);
    expect(generic[1]?.reason).toBe("DENYLIST:4: listed without a reason");
  });

  it("denies whole tests, and the subtests of tests that run through test_progs -d; the suite's own reasons win", () => {
    const suite = { ...loadSuite("bpf-timer"), deny: [{ tests: ["kprobe_multi_test"], reason: "mine" }] };
    const sel = selectTests(suite, "arm64", "6.12.118", "on", aarch64);
    const split = splitDenied(sel, ["bpf_cookie", "kprobe_multi_test", "timer", "fentry_test"], true);
    expect(split.toRun).toEqual(["bpf_cookie", "timer", "fentry_test"]);
    expect(split.denied).toEqual([
      { test: "kprobe_multi_test", reason: "mine" },
      expect.objectContaining({ test: "bpf_cookie", subtest: "multi_kprobe_attach_api" }),
      expect.objectContaining({ test: "bpf_cookie", subtest: "multi_kprobe_link_api" }),
      {
        test: "fentry_test",
        subtest: "fentry_many_args",
        reason: expect.stringMatching(/^DENYLIST\.aarch64:6: /),
      },
    ]);
    expect(testProgsSelectionArgs({ ...split, allow: split.toRun })).toEqual([
      "-a",
      "bpf_cookie,timer,fentry_test",
      "-d",
      "bpf_cookie/multi_kprobe_attach_api,bpf_cookie/multi_kprobe_link_api,fentry_test/fentry_many_args",
    ]);
    // A selection of only subtests that are all denied runs nothing of the test: it is denied as a whole.
    const hashOnly = testProgsSelection(
      splitDenied(
        selectTests(suite, "arm64", "6.12.118", "on", [{ pattern: "timer_crash/hash", reason: "r" }]),
        ["timer_crash"],
        true,
      ),
      ["timer_crash/hash"],
    );
    expect(hashOnly).toEqual({
      denied: [{ test: "timer_crash", reason: "r" }],
      toRun: [],
      allow: [],
      deny: [],
    });
    // kselftest's runner has no subtests to deny: there only whole tests are.
    expect(splitDenied(sel, ["bpf_cookie"]).denied).toEqual([]);
  });

  it("knows the test_progs flavours the real 6.12 tree builds, and runs the suite through the flavour's binary", async () => {
    const tree = await resolveTree({ kernel: "6.12" });
    expect(treeFlavours(tree.path)).toEqual(expect.arrayContaining(["test_progs", "no_alu32", "cpuv4"]));
    expect(treeFlavours(fixtures)).toEqual(["test_progs"]);
    const suite = withFlavour(loadSuite("bpf-timer"), "cpuv4");
    expect(suite.push).toEqual(["test_progs-cpuv4", "timer_probe", "*.ko", "*.bpf.o"]);
    expect(suite.commands.map((c) => c.run[0])).toEqual(["./test_progs-cpuv4", "./timer_probe"]);
    expect(withFlavour(loadSuite("bpf-timer"), "test_progs")).toEqual(loadSuite("bpf-timer"));
    expect(unknownFlavour("cpu4")).toBe("unknown flavour 'cpu4': valid are test_progs, no_alu32, cpuv4");
  });

  it("finds the tree's files by the arch's uname -m, and nothing in a tree without them", () => {
    const tree = join(fixtures, "tree");
    expect(treeDenylist(tree, loadArch("arm64")).map((d) => d.reason)).toEqual([
      "DENYLIST:1: everywhere",
      "DENYLIST.aarch64:2: arm64 only",
    ]);
    expect(treeDenylist(tree, loadArch("x86_64")).map((d) => d.reason)).toEqual(["DENYLIST:1: everywhere"]);
    expect(treeConfigFragments(tree, loadArch("x86_64")).map((f) => f.slice(tree.length + 1))).toEqual([
      "tools/testing/selftests/bpf/config",
      "tools/testing/selftests/bpf/config.x86_64",
    ]);
    expect(treeDenylist(fixtures, loadArch("arm64"))).toEqual([]);
  });
});

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
