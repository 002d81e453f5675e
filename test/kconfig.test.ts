import { describe, expect, it } from "vitest";
import { canonicalConfig, compareConfig, mergeRequests, parseConfig } from "../src/kernel/kconfig.ts";
import { evalExpr, explainMismatch, type KconfigDb, parseKconfigFile } from "../src/kernel/kconfig-lang.ts";
import { loadKconfigDb, resolveTree } from "../src/kernel/tree.ts";

describe("fragments and .config", () => {
  it("reads set and unset options, later fragments winning", () => {
    const a = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="x y"\n# a comment\n');
    const b = parseConfig("CONFIG_B=y\nCONFIG_A=m\n");
    const merged = mergeRequests([a, b]);
    expect([...merged]).toEqual([
      ["A", "m"],
      ["B", "y"],
      ["S", '"x y"'],
    ]);
  });

  it("lists every requested option the final config lacks, an absent one counting as n", () => {
    const requested = parseConfig("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n");
    const final = parseConfig("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_D=m\n");
    expect(compareConfig(requested, final)).toEqual([
      { symbol: "B", requested: "y", actual: "n" },
      { symbol: "D", requested: "y", actual: "m" },
    ]);
  });

  it("hashes configs by their set options only", () => {
    const a = parseConfig("# header\nCONFIG_B=y\nCONFIG_A=y\n# CONFIG_C is not set\n");
    const b = parseConfig("CONFIG_A=y\nCONFIG_B=y\n");
    expect(canonicalConfig(a)).toBe(canonicalConfig(b));
  });
});

describe("Kconfig expressions", () => {
  const cfg = parseConfig("CONFIG_A=y\nCONFIG_M=m\nCONFIG_N=5\n");
  it.each([
    ["A", 2],
    ["M", 1],
    ["B", 0],
    ["A && M", 1],
    ["A && !B", 2],
    ["(B || M) && A", 1],
    ["N >= 4", 2],
    ['N = "5"', 2],
    ["$(cc-option,-foo)", undefined],
  ])("%s evaluates to %s", (expr, want) => {
    expect(evalExpr(expr, cfg)).toBe(want);
  });
});

describe("why an option did not land", () => {
  it("collects depends from the entry, if blocks and menus, and skips help text", () => {
    const db: KconfigDb = new Map();
    parseKconfigFile(
      [
        'menu "Outer"',
        "\tdepends on NET",
        "if MODULES",
        "config FOO",
        '\tbool "foo"',
        "\tdepends on BAR",
        "\tselect BAZ",
        "\thelp",
        "\t  depends on NOT_A_DEPENDENCY",
        "endif",
        "endmenu",
        "config BAZ",
        "\tbool",
      ].join("\n"),
      db,
    );
    expect(db.get("FOO")?.depends.sort()).toEqual(["BAR", "MODULES", "NET"]);
    expect(db.get("BAZ")).toMatchObject({ hasPrompt: false, selectedBy: ["FOO"] });
  });

  it("names the unmet dependency, read from the real 6.12 Kconfig files", async () => {
    const tree = await resolveTree({ kernel: "6.12" });
    const db = loadKconfigDb(tree.path, "arm64");
    // What arm64 tinyconfig does to the BPF timer fragment when PERF_EVENTS is not requested.
    const final = parseConfig(
      "CONFIG_FTRACE=y\nCONFIG_BPF_SYSCALL=y\nCONFIG_KPROBE_EVENTS=y\n# CONFIG_PERF_EVENTS is not set\n",
    );
    const msg = explainMismatch({ symbol: "BPF_EVENTS", requested: "y", actual: "n" }, db, final);
    expect(msg).toBe(
      "CONFIG_BPF_EVENTS=y requested but not set: depends on (KPROBE_EVENTS || UPROBE_EVENTS) && PERF_EVENTS (KPROBE_EVENTS is y, UPROBE_EVENTS is n, PERF_EVENTS is n)",
    );
    const one = explainMismatch({ symbol: "MODULE_UNLOAD", requested: "y", actual: "n" }, db, new Map());
    expect(one).toBe("CONFIG_MODULE_UNLOAD=y requested but not set: depends on MODULES (which is n)");
    expect(explainMismatch({ symbol: "NO_SUCH_THING", requested: "y", actual: "n" }, db, final)).toContain(
      "no such option",
    );
  });
});
