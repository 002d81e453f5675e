import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadArch } from "../src/arch/arch.ts";
import { patchTable } from "../src/bisect/each-patch.ts";
import type { StepRecord, StepVerdict } from "../src/bisect/judge.ts";
import { elfDeps, elfSection } from "../src/common/elf.ts";
import { lineSplitter } from "../src/common/lines.ts";
import {
  countCpus,
  type GuestFacts,
  harnessFaults,
  jitAsked,
  jitMode,
  parseFacts,
} from "../src/guest/facts.ts";
import { kernelCmdline, qemuArgs } from "../src/guest/qemu.ts";
import { shellQuote } from "../src/guest/ssh.ts";
import { ccacheCounts, firstError, isObjectLine } from "../src/kernel/make-output.ts";
import { missingTimerApi } from "../src/kernel/tree.ts";
import type { ArchRun } from "../src/report/results.ts";
import { timeLine } from "../src/report/summary.ts";
import {
  planSelftests,
  skeletonsIncluded,
  testsDeclared,
  unbuiltReason,
  unmatchedSelections,
} from "../src/selftests/plan.ts";

describe("qemu command line", () => {
  it("forwards SSH on loopback only and keeps the console on stdio", () => {
    const a = loadArch("arm64");
    const args = qemuArgs(a, {
      kernel: "/k",
      initrd: "/i",
      accel: "tcg",
      sshPort: 2222,
      memoryMiB: 1024,
      cpus: 2,
      cmdline: kernelCmdline(a, {}),
    });
    expect(args.join(" ")).toContain("-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22");
    expect(args).toContain("max,pauth-impdef=on");
    expect(args[args.indexOf("-append") + 1]).toBe("console=ttyAMA0 loglevel=7 panic=-1 oops=panic");
    expect(args).not.toContain("quiet");
    expect(args[args.indexOf("-accel") + 1]).toBe("tcg");
    // A suite's tcgSingleThread puts every vCPU on one host thread, under TCG only.
    const plan = {
      kernel: "/k",
      accel: "tcg" as const,
      memoryMiB: 1024,
      cpus: 2,
      cmdline: [],
      tcgSingleThread: true,
    };
    expect(qemuArgs(a, plan)).toContain("tcg,thread=single");
    expect(
      qemuArgs(a, { ...plan, accel: "kvm" })[qemuArgs(a, { ...plan, accel: "kvm" }).indexOf("-accel") + 1],
    ).toBe("kvm");
  });

  it("gives an x86_64 guest the host's TSC rate where the host has one, and leaves it out elsewhere", () => {
    const x = loadArch("x86_64");
    expect(kernelCmdline(x, { tscKhz: 2596140 }, ["rdinit=/bin/sh"]).join(" ")).toBe(
      "console=ttyS0 loglevel=7 panic=-1 oops=panic tsc=reliable tsc_early_khz=2596140 rdinit=/bin/sh",
    );
    expect(kernelCmdline(x, {}).join(" ")).toBe("console=ttyS0 loglevel=7 panic=-1 oops=panic tsc=reliable");
  });
});

describe("guest facts", () => {
  it("reads release, JIT, clocksource, CPUs and hrtimer resolution", () => {
    const f = parseFacts(
      "release=6.12.117\nmachine=aarch64\njit=1\nharden=0\nclocksource=arch_sys_counter\ncpus=2\nonline=0-1\nconfig=abc\n  .resolution: 1 nsecs\n",
    );
    expect(f).toEqual({
      release: "6.12.117",
      machine: "aarch64",
      jit: "1",
      harden: "0",
      clocksource: "arch_sys_counter",
      cpus: 2,
      configSha256: "abc",
      hrtimerResolutionNs: 1,
    });
    expect(countCpus("0-3,5,7-8")).toBe(7);
  });
});

describe("JIT modes", () => {
  const facts: GuestFacts = {
    kernelRelease: "6.12.118",
    configHash: "c",
    arch: "x86_64",
    machine: "x86_64",
    accel: "tcg",
    accelReason: "",
    bpfJitEnable: "1",
    bpfJitHarden: "0",
    clocksource: "tsc",
    hrtimerResolutionNs: 1,
    cpus: 2,
    bootSeconds: 2,
  };

  it("reads what a run asked for from the sysctls on its kernel command line", () => {
    expect(jitAsked(["loglevel=7"])).toEqual({ enable: "1" });
    expect(jitAsked(["sysctl.net.core.bpf_jit_harden=2"])).toEqual({ enable: "1", harden: "2" });
    expect(jitAsked(["sysctl.net/core/bpf_jit_enable=1", "sysctl.net.core.bpf_jit_enable=0"])).toEqual({
      enable: "0",
    });
  });

  it("says in the header which mode the guest really ran", () => {
    expect(jitMode(facts)).toBe("JIT on");
    expect(jitMode({ ...facts, bpfJitHarden: "2" })).toBe("JIT on, hardened (bpf_jit_harden=2)");
    expect(jitMode({ ...facts, bpfJitEnable: "0" })).toBe("JIT OFF (bpf_jit_enable=0)");
  });

  it("calls a JIT mode other than the one asked for a harness fault, and JIT off asked for none", () => {
    expect(harnessFaults({ ...facts, bpfJitEnable: "0" }, 1)).toEqual([
      "bpf_jit_enable is 0: the tests did not run on the JIT",
    ]);
    expect(harnessFaults({ ...facts, bpfJitEnable: "0" }, 1, { enable: "0" })).toEqual([]);
    expect(harnessFaults(facts, 1, { enable: "0" })).toEqual([
      "the run asked for bpf_jit_enable=0, the guest has 1 (a kernel with CONFIG_BPF_JIT_ALWAYS_ON keeps the JIT on)",
    ]);
    expect(harnessFaults(facts, 1, { enable: "1", harden: "2" })).toEqual([
      "the run asked for bpf_jit_harden=2, the guest has 0: the tests did not run on the JIT mode asked for",
    ]);
  });
});

describe("selftests plan", () => {
  it("keeps the selected prog_tests and the programs their skeletons and the Makefile need", () => {
    const sources = new Map([
      ["timer", '#include "timer.skel.h"\n#include "timer_failure.skel.h"\n'],
      ["bpf_attr_size", '#include "cgroup_skb_direct_packet_access.skel.h"\n'],
    ]);
    const makefile =
      "LSKELS := fentry_test.c \\\n\tatomics.c\nlinked_funcs.skel.h-deps := linked_funcs1.bpf.o\nBENCH := crypto_bench.skel.h\n";
    const all = [
      "timer",
      "timer_failure",
      "fentry_test",
      "atomics",
      "linked_funcs1",
      "crypto_bench",
      "unused",
    ];
    expect(planSelftests(["timer*"], sources, all, makefile)).toEqual({
      progTests: ["timer"],
      progs: ["atomics", "fentry_test", "linked_funcs1", "timer", "timer_failure"],
      unbuilt: [],
    });
    expect(skeletonsIncluded('#include "a.lskel.h"\n#include "b.subskel.h"')).toEqual(["a", "b"]);
  });

  it("leaves out a prog_test whose skeleton nothing builds, with its tests, and keeps linked skeletons", () => {
    // Debian's 6.12.118: prog_tests/bpf_attr_size.c without progs/cgroup_skb_direct_packet_access.c.
    const sources = new Map([
      ["timer", '#include "timer.skel.h"\nvoid serial_test_timer(void)\n'],
      ["linked", '#include "linked_funcs.skel.h"\nvoid test_linked(void)\n'],
      [
        "bpf_attr_size",
        '#include "cgroup_skb_direct_packet_access.skel.h"\nvoid test_bpf_attr_size(void)\nvoid test_attr_two(void)\n',
      ],
    ]);
    const makefile = "linked_funcs.skel.h-deps := linked_funcs1.bpf.o linked_funcs2.bpf.o\n";
    const plan = planSelftests(["*"], sources, ["timer", "linked_funcs1", "linked_funcs2"], makefile);
    expect(plan.progTests).toEqual(["linked", "timer"]);
    expect(plan.unbuilt).toEqual([
      {
        file: "bpf_attr_size",
        skeleton: "cgroup_skb_direct_packet_access",
        tests: ["attr_two", "bpf_attr_size"],
      },
    ]);
    expect(unbuiltReason(plan.unbuilt[0] ?? { file: "", skeleton: "", tests: [] })).toBe(
      "not built: prog_tests/bpf_attr_size.c includes cgroup_skb_direct_packet_access.skel.h, which no progs/ source of this tree builds",
    );
    // Every program is still built when every test is selected; a selection without the broken file has none.
    expect(plan.progs).toEqual(["linked_funcs1", "linked_funcs2", "timer"]);
    expect(planSelftests(["timer"], sources, ["timer"], makefile).unbuilt).toEqual([]);
  });

  it("reads the tests test_progs will have from prog_tests, as the Makefile does", () => {
    const timer = "static void test_helper(int x)\n{\n}\n\nvoid serial_test_timer(void)\n{\n";
    const crash = 'void test_timer_crash(void)\n{\n\tif (test__start_subtest("array"))\n';
    const lockup = "void test_timer_lockup()\n{\n";
    const tests = testsDeclared([timer, crash, lockup]);
    expect(tests).toEqual(["timer", "timer_crash", "timer_lockup"]);
    expect(unmatchedSelections(["timer_crash/hash", "timer*", "tmer", "x/timer"], tests)).toEqual([
      "tmer",
      "x/timer",
    ]);
  });
});

describe("small readers", () => {
  it("reads a program's interpreter and libraries from its ELF headers as readelf does, on either arch", () => {
    const files = [
      "/usr/bin/ls",
      "/usr/lib/x86_64-linux-gnu/libc.so.6",
      "/usr/aarch64-linux-gnu/lib/libc.so.6",
      "/usr/aarch64-linux-gnu/lib/libm.so.6",
    ];
    expect(elfDeps("/usr/bin/ldd")).toEqual({ needed: [] }); // a script
    for (const f of files) {
      const text = execFileSync("readelf", ["-dlW", f], { encoding: "utf8" }).toString();
      const needed = [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      const interpreter = /\[Requesting program interpreter: ([^\]]+)\]/.exec(text)?.[1];
      expect(elfDeps(f), f).toEqual(interpreter ? { needed, interpreter } : { needed });
    }
    expect(elfDeps("/usr/bin/ls").needed.length).toBeGreaterThan(0);
  });

  it("finds the first compiler error in a build log", () => {
    const log =
      "  CC      kernel/bpf/helpers.o\nkernel/bpf/helpers.c:12:3: error: expected ';'\nmake[4]: *** [x] Error 1\n";
    expect(firstError(log)).toBe("kernel/bpf/helpers.c:12:3: error: expected ';'");
    expect(isObjectLine("  CC      kernel/bpf/helpers.o")).toBe(true);
    expect(isObjectLine("  LD      vmlinux")).toBe(false);
  });

  it("quotes arguments for the guest shell", () => {
    expect(shellQuote(["./test_progs", "-a", "timer*", "it's"])).toBe("./test_progs -a 'timer*' 'it'\\''s'");
  });

  it("recognises a tree without the timer series", () => {
    expect(
      missingTimerApi(
        "struct bpf_timer {\n bpf_timer_init bpf_timer_set_callback bpf_timer_start bpf_timer_cancel",
      ),
    ).toEqual([]);
    expect(missingTimerApi("struct bpf_spin_lock {")).toContain("bpf_timer_start");
  });
});

describe("--each-patch's table", () => {
  it("shows build, boot and each test per patch, and names the first bad one", () => {
    const run = (verdict: "pass" | "fail") =>
      ({
        arch: "x86_64",
        suite: "s",
        status: verdict === "pass" ? "passed" : "failed",
        guest: {},
        problems: [],
        splats: [],
        tests: [
          { test: "timer", verdict },
          { test: "timer_mim", verdict: "pass" },
          { test: "timer_crash", verdict: "pass" },
        ],
        timings: {},
      }) as unknown as ArchRun;
    const step = (commit: string, verdict: StepVerdict) =>
      ({
        commit,
        verdict,
        reason: verdict === "bad" ? "failed: timer" : "",
        tests: [],
      }) as unknown as StepRecord;
    const table = patchTable({
      arch: "x86_64",
      series: "s.mbox",
      base: "b",
      patches: [
        { index: 1, subject: "[PATCH 1/2] a", step: step("a".repeat(40), "good"), run: run("pass") },
        { index: 2, subject: "[PATCH 2/2] b", step: step("b".repeat(40), "bad"), run: run("fail") },
      ],
      firstBad: { index: 2, subject: "[PATCH 2/2] b", commit: "b".repeat(40), reason: "failed: timer" },
    });
    expect(table.split("\n")).toEqual([
      "patch  commit        build  boot  timer  verdict  fault",
      "1/2    aaaaaaaaaaaa  ok     ok    PASS   good     -",
      "2/2    bbbbbbbbbbbb  ok     ok    FAIL   bad      test",
      "the same after every patch: 2 PASS (timer_mim, timer_crash)",
      "first bad: patch 2/2 [PATCH 2/2] b (failed: timer)",
    ]);
  });
});

describe("one section of an ELF file", () => {
  it("reads a named section and nothing else, as readelf names it", () => {
    // node itself: a dynamically linked ELF64 little-endian program on both arches khil runs on.
    expect(elfSection(process.execPath, ".interp")?.toString("latin1")).toMatch(
      /^\/lib.*\/ld-linux-.*\.so\.\d\0$/,
    );
    expect(elfSection(process.execPath, ".no-such-section")).toBeUndefined();
    expect(elfSection(join(import.meta.dirname, "units.test.ts"), ".BTF")).toBeUndefined();
  });
});

describe("where a run's time went", () => {
  it("sums the stages one after the other and names what ran beside the build", () => {
    const t = {
      build: 500,
      packages: 14.2,
      selftests: 41,
      boot: 5,
      facts: 0.2,
      push: 1.5,
      run: 20,
      total: 567.7,
    };
    expect(timeLine(t)).toBe(
      "time: build 500.0 s + selftests 41.0 s + boot 5.0 s + facts 0.2 s + push 1.5 s + run 20.0 s = 567.7 s; beside the build: guest packages 14.2 s",
    );
    // A run stopped at its build, and one whose packages were all there already.
    expect(timeLine({ build: 3, total: 3 })).toBe("time: build 3.0 s = 3.0 s");
    expect(timeLine({})).toBeUndefined();
  });
});

describe("ccache's stats log", () => {
  it("counts each compiler call of a real kernel build once, as a hit or a miss", () => {
    // 100 calls from the middle of a cold x86_64 6.12 build: sources named `../` from the build directory.
    const log = readFileSync(
      join(import.meta.dirname, "fixtures", "ccache", "x86_64-cold-build.log"),
      "utf8",
    );
    expect(log).toMatch(/^# \.\.\/kernel\/notifier\.c$/m);
    expect(ccacheCounts(log)).toEqual({ hits: 3, misses: 96 });
  });
});

describe("lineSplitter", () => {
  it("hands on whole lines across chunks, and the last unterminated one only on flush", () => {
    const got: string[] = [];
    const split = lineSplitter((l) => got.push(l));
    split("#267     reg_bounds_r");
    split("and_consts_u64_s32:OK\r\n#268 x:");
    expect(got).toEqual(["#267     reg_bounds_rand_consts_u64_s32:OK"]);
    split.flush();
    expect(got).toEqual(["#267     reg_bounds_rand_consts_u64_s32:OK", "#268 x:"]);
  });
});
