import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { archNames, loadArch, resolveArchs } from "../src/arch/arch.ts";
import { denyReason, loadSuite, selectTests } from "../src/run/suite.ts";

function suiteFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "khil-suite-"));
  const f = join(dir, "s.yaml");
  writeFileSync(f, text);
  return f;
}

const GOOD = `name: t
tests: ["timer*"]
commands:
  - name: c
    run: [./test_progs]
    parser: test_progs
`;

describe("suite files", () => {
  it("loads the shipped bpf-timer suite", () => {
    const s = loadSuite("bpf-timer");
    expect(s.tests).toEqual(["timer*"]);
    expect(s.commands[0]?.parser).toBe("test_progs");
  });

  it("loads the kselftest suites: the runner for a target, KTAP, and a mixed suite's own selections", () => {
    const timers = loadSuite("timers");
    expect(timers.build?.kselftest).toEqual(["timers"]);
    expect(timers.commands[0]).toMatchObject({
      kselftest: "timers",
      run: ["kselftest/run_kselftest.sh"],
      parser: "ktap",
    });
    const stack = loadSuite("timer-stack");
    expect(stack.commands.map((c) => [c.name, c.parser, c.tests ?? stack.tests])).toEqual([
      ["test_progs", "test_progs", ["timer*"]],
      ["timers", "ktap", ["*"]],
    ]);
  });

  it("refuses a kselftest command whose target the suite does not build, or one with run as well", () => {
    const ks = `name: k
build: { kselftest: [timers] }
tests: ["*"]
commands:
  - name: c
    kselftest: net
`;
    const f = suiteFile(ks);
    expect(() => loadSuite(f)).toThrow(
      `${f}: command c runs kselftest target net, which build.kselftest does not build (timers)`,
    );
    const both = suiteFile(ks.replace("kselftest: net", "kselftest: timers\n    run: [./x]"));
    expect(() => loadSuite(both)).toThrow(/:5: commands\.0: give either run \(a command line\) or kselftest/);
    const half = suiteFile(GOOD.replace('tests: ["timer*"]', 'build: { selftests: bpf }\ntests: ["timer*"]'));
    expect(() => loadSuite(half)).toThrow(/:2: build: selftests: bpf and progTests go together/);
  });

  it("takes an image: addition, and refuses a program path that leaves the packages, with its line", () => {
    expect(loadSuite("bpf-full").image).toEqual({
      packages: ["iproute2", "dash", "bash", "ethtool"],
      programs: ["bin/ip", "sbin/tc", "bin/sh", "bin/bash", "sbin/ethtool"],
    });
    for (const bad of ["/bin/ip", "../etc/passwd", "bin/../../x"]) {
      const f = suiteFile(`${GOOD}image:\n  packages: [iproute2]\n  programs: ["${bad}"]\n`);
      expect(() => loadSuite(f), bad).toThrow(/image\.programs\.0: a path inside the packages \(bin\/ip\)/);
    }
  });

  it("takes a description, as users write one at the top of a suite", () => {
    const f = suiteFile(`description: what this suite is for\n${GOOD}`);
    expect(loadSuite(f).description).toBe("what this suite is for");
  });

  it("reports a bound without a limit, or on a test named by a glob, with its line", () => {
    const bounds = (b: string) => suiteFile(`${GOOD}bounds:\n  - ${b}\n`);
    expect(() =>
      loadSuite(bounds("{ test: timer_probe/latency, measure: m, median: {}, reason: r }")),
    ).toThrow(/:8: bounds\.0\.median: at least one accelerator's limit/);
    expect(() =>
      loadSuite(bounds("{ test: 'timer_probe/*', measure: m, median: { tcg: 1 }, reason: r }")),
    ).toThrow(/:8: bounds\.0\.test: a test or test\/subtest, named literally/);
  });

  it("refuses a bound on a test no command runs: a typo must not turn the bound off", () => {
    const f = suiteFile(
      `${GOOD}bounds:\n  - { test: timer_prob/latency, measure: m, median: { tcg: 1 }, reason: r }\n`.replace(
        'tests: ["timer*"]',
        "tests: [timer_probe]",
      ),
    );
    expect(() => loadSuite(f)).toThrow(
      `${f}: bounds names timer_prob/latency, whose test timer_prob no command of the suite runs (they run timer_probe)`,
    );
  });

  it("reports a misspelled key with file, line and field", () => {
    const f = suiteFile(GOOD.replace("    parser: test_progs", "    parser: test_progs\n    timeuot: 5"));
    expect(() => loadSuite(f)).toThrow(`${f}:7: commands.0.timeuot: unknown key 'timeuot'`);
  });

  it("reports a wrong type with the line of the value", () => {
    const f = suiteFile(GOOD.replace('tests: ["timer*"]', "tests: timer"));
    expect(() => loadSuite(f)).toThrow(new RegExp(`^${f}:2: tests: `));
  });

  it("reports a bad parser name", () => {
    const f = suiteFile(GOOD.replace("parser: test_progs", "parser: junit"));
    expect(() => loadSuite(f)).toThrow(new RegExp(`${f}:6: commands.0.parser: .*test_progs`));
  });

  it("refuses a command name that could leave the run directory", () => {
    const f = suiteFile(GOOD.replace("  - name: c", "  - name: ../../c"));
    expect(() => loadSuite(f)).toThrow(`${f}:4: commands.0.name: letters, digits, '.', '_' and '-' only`);
  });

  it("reports YAML syntax errors with their line", () => {
    const f = suiteFile("name: t\ntests: [a\n");
    expect(() => loadSuite(f)).toThrow(new RegExp(`^${f}:\\d+: invalid YAML`));
  });

  it("names the valid suites for an unknown one", () => {
    expect(() => loadSuite("bpf-timr")).toThrow(
      "unknown suite 'bpf-timr': valid are bpf-full, bpf-timer, bpf-timer-probe",
    );
  });

  it("denies the trampoline tests on arm64 before 6.4 only", () => {
    const s = loadSuite("bpf-timer");
    const old = selectTests(s, "arm64", "6.1.192");
    expect(denyReason(old, "timer_crash")).toMatch(/trampolines/);
    expect(denyReason(selectTests(s, "arm64", "6.12.117"), "timer_crash")).toBeUndefined();
    expect(denyReason(selectTests(s, "x86_64", "6.1.192"), "timer")).toBeUndefined();
  });

  it("denies every timer selftest where the guest's JIT is off, with the verifier's reason", () => {
    const s = loadSuite("bpf-timer");
    for (const t of ["timer", "timer_crash", "timer_mim", "timer_lockup"])
      expect(denyReason(selectTests(s, "x86_64", "6.12.118", "off"), t)).toMatch(
        /callbacks are not allowed in non-JITed programs/,
      );
    expect(denyReason(selectTests(s, "x86_64", "6.12.118", "on"), "timer")).toBeUndefined();
  });

  it("names the probes there are for an unknown one", () => {
    expect(() => loadSuite("test/fixtures/suites/unknown-probe.yaml")).toThrow(
      "test/fixtures/suites/unknown-probe.yaml: build.probes names 'timer_prob', which is not in probes/: valid are timer_probe",
    );
  });
});

describe("architectures", () => {
  it("are data files, each complete", () => {
    expect(archNames()).toEqual(["arm64", "s390x", "x86_64"]);
    expect(loadArch("arm64").qemu.console).toBe("ttyAMA0");
    expect(loadArch("s390x").endian).toBe("big");
    expect(loadArch("x86_64").endian).toBe("little");
    expect(resolveArchs("all").map((a) => a.name)).toEqual(["arm64", "s390x", "x86_64"]);
  });

  it("names the valid ones for an unknown arch", () => {
    expect(() => loadArch("riscv")).toThrow("unknown arch 'riscv': valid are arm64, s390x, x86_64");
  });
});
