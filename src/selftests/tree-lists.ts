/**
 * The BPF selftests' own lists, as BPF CI uses them: `tools/testing/selftests/bpf/DENYLIST` and
 * `DENYLIST.<uname -m>` (tests known not to work there, each with the reason in a comment), and the Kconfig
 * fragments the selftests need (`config`, `config.vm`, `config.<uname -m>`), and the test_progs flavours its
 * Makefile builds. A suite takes the lists with `fromTree:`; each tree has its own, so they are read from the
 * tree under test, never copied into khil.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Arch, unameMachine } from "../arch/arch.ts";

const BPF_SELFTESTS = "tools/testing/selftests/bpf";

export interface TreeDeny {
  /** A test, or `test/subtest`, as test_progs' -d takes it (globs allowed). */
  pattern: string;
  /** Where it came from and why: `DENYLIST.aarch64:4: needs CONFIG_FPROBE`. */
  reason: string;
}

/** One DENYLIST file's entries: a pattern per line, `#` starting a comment, which is the entry's reason. */
export function parseDenylist(text: string, file: string): TreeDeny[] {
  return text.split("\n").flatMap((line, i) => {
    const hash = line.indexOf("#");
    const pattern = (hash < 0 ? line : line.slice(0, hash)).trim();
    if (!pattern) return [];
    const why = hash < 0 ? "" : line.slice(hash + 1).trim();
    return [{ pattern, reason: `${file}:${i + 1}: ${why || "listed without a reason"}` }];
  });
}

/** The tree's DENYLIST and DENYLIST.<arch>, where it has them (older trees have neither). */
export function treeDenylist(treePath: string, arch: Pick<Arch, "uname" | "triplet">): TreeDeny[] {
  return ["DENYLIST", `DENYLIST.${unameMachine(arch)}`].flatMap((f) => {
    const path = join(treePath, BPF_SELFTESTS, f);
    return existsSync(path) ? parseDenylist(readFileSync(path, "utf8"), f) : [];
  });
}

/** The tree's selftests config fragments for `arch`, in the order vmtest.sh merges them, where present. */
export function treeConfigFragments(treePath: string, arch: Pick<Arch, "uname" | "triplet">): string[] {
  return ["config", "config.vm", `config.${unameMachine(arch)}`]
    .map((f) => join(treePath, BPF_SELFTESTS, f))
    .filter((p) => existsSync(p));
}

/** The plain test_progs: the flavour of every run that names none. */
export const DEFAULT_FLAVOUR = "test_progs";

/**
 * The flavours khil runs, as BPF CI does (bpf_gcc needs GCC's BPF backend, which Debian 12 lacks). A name
 * outside these is bad input; one of these that a tree does not build skips its runs, with the reason.
 */
export const FLAVOURS = [DEFAULT_FLAVOUR, "no_alu32", "cpuv4"];

/** A one-line error for a flavour khil does not know, else undefined. */
export function unknownFlavour(f: string): string | undefined {
  return FLAVOURS.includes(f) ? undefined : `unknown flavour '${f}': valid are ${FLAVOURS.join(", ")}`;
}

/**
 * The test_progs flavours the tree's selftests Makefile defines runners for (`test_progs-no_alu32`, with its
 * BPF objects built without 32-bit subregisters into no_alu32/; `test_progs-cpuv4`, built for the v4 ISA),
 * the default one first: BPF CI runs each as a test_progs of its own.
 */
export function treeFlavours(treePath: string): string[] {
  const makefile = join(treePath, BPF_SELFTESTS, "Makefile");
  const text = existsSync(makefile) ? readFileSync(makefile, "utf8") : "";
  const defined = [...text.matchAll(/DEFINE_TEST_RUNNER,test_progs,(\w+)\)/g)].map((m) => m[1] ?? "");
  return [DEFAULT_FLAVOUR, ...new Set(defined)];
}
