/**
 * Pure planning of a cut-down BPF selftests build: which prog_tests and BPF programs to copy so that
 * test_progs is built from the selected tests only, and a broken unrelated test cannot stop the build.
 */

import { matchesAny } from "../common/glob.ts";

/** The Makefile with its continued lines joined, one logical line per line. */
const joinContinuations = (makefile: string) => makefile.replace(/\\\n/g, " ");

/** Skeleton headers a prog_test includes name the BPF programs it needs: `#include "timer.skel.h"`. */
export function skeletonsIncluded(source: string): string[] {
  return [...source.matchAll(/#include\s+"([A-Za-z0-9_]+)\.(?:l?skel|subskel)\.h"/g)].map((m) => m[1] ?? "");
}

/**
 * Programs test_progs needs whatever tests are selected, as the selftests Makefile lists them: the light
 * skeletons (LSKELS, LSKELS_EXTRA) and the parts of linked skeletons (`X.skel.h-deps := a.bpf.o b.bpf.o`).
 */
export function programsNamedByMakefile(makefile: string, programs: readonly string[]): string[] {
  const text = joinContinuations(makefile);
  const names = new Set<string>();
  for (const m of text.matchAll(/^(?:LSKELS|LSKELS_EXTRA)\s*:?\+?=(.*)$/gm))
    for (const w of (m[1] ?? "").matchAll(/([A-Za-z0-9_]+)\.c\b/g)) names.add(w[1] ?? "");
  for (const m of text.matchAll(/^[A-Za-z0-9_]+\.skel\.h-deps\s*:=(.*)$/gm))
    for (const w of (m[1] ?? "").matchAll(/([A-Za-z0-9_]+)\.bpf\.o\b/g)) names.add(w[1] ?? "");
  return programs.filter((p) => names.has(p));
}

/** The programs the selftests Makefile builds and runs (`TEST_GEN_PROGS`, each assignment and `+=`). */
export function makefilePrograms(makefile: string): string[] {
  const text = joinContinuations(makefile);
  const names = new Set<string>();
  for (const m of text.matchAll(/^TEST_GEN_PROGS\s*\+?=(.*)$/gm))
    for (const w of (m[1] ?? "").split(/\s+/)) if (/^[\w-]+$/.test(w)) names.add(w);
  return [...names].sort();
}

export function makefileDefines(makefile: string, program: string): boolean {
  return makefilePrograms(makefile).includes(program);
}

/**
 * The tests test_progs will have, read from prog_tests sources the way the selftests Makefile generates
 * tests.h: one per `void test_NAME(void)` or `void serial_test_NAME(void)`.
 */
export function testsDeclared(sources: Iterable<string>): string[] {
  const names = new Set<string>();
  for (const text of sources)
    for (const m of text.matchAll(/^void (?:serial_)?test_([a-zA-Z0-9_]+)\((?:void)?\)/gm))
      names.add(m[1] ?? "");
  return [...names].sort();
}

/** The `-a`-style selections (`glob` or `glob/subtest-glob`) whose test part matches none of `tests`. */
export function unmatchedSelections(selections: readonly string[], tests: readonly string[]): string[] {
  return selections.filter((s) => !tests.some((t) => matchesAny(t, [s.split("/")[0] ?? s])));
}

/** Skeletons the selftests Makefile links from several objects (`X.skel.h-deps := a.bpf.o b.bpf.o`): X. */
function linkedSkeletons(makefile: string): Set<string> {
  const text = joinContinuations(makefile);
  return new Set([...text.matchAll(/^([A-Za-z0-9_]+)\.skel\.h-deps\s*:=/gm)].map((m) => m[1] ?? ""));
}

/**
 * A prog_test that includes a skeleton no progs/ source and no linked skeleton makes: the tree is broken
 * there (Debian's 6.12.118 ships prog_tests/bpf_attr_size.c without its progs/ program), and the file
 * would stop the whole test_progs build. It is left out, and its tests are reported, with this reason.
 */
export interface UnbuiltProgTest {
  /** prog_tests file name without `.c`. */
  file: string;
  skeleton: string;
  /** The tests it declares, which test_progs will not have. */
  tests: string[];
}

export interface SelftestsPlan {
  progTests: string[];
  progs: string[];
  unbuilt: UnbuiltProgTest[];
}

/** Why a test of an unbuilt prog_test has no result of its own: what a report shows as its reason. */
export function unbuiltReason(u: UnbuiltProgTest): string {
  return `not built: prog_tests/${u.file}.c includes ${u.skeleton}.skel.h, which no progs/ source of this tree builds`;
}

/**
 * `selected` are prog_tests file names without `.c` matching the suite's globs; `progSources` maps each
 * prog_tests name to its text; `programs` are progs/*.c names without `.c`.
 */
export function planSelftests(
  progTestGlobs: readonly string[],
  progTestSources: ReadonlyMap<string, string>,
  programs: readonly string[],
  makefile: string,
): SelftestsPlan {
  const selected = [...progTestSources.keys()].filter((n) => matchesAny(n, progTestGlobs)).sort();
  const available = new Set(programs);
  const linked = linkedSkeletons(makefile);
  const unbuilt: UnbuiltProgTest[] = [];
  for (const file of selected) {
    const source = progTestSources.get(file) ?? "";
    const skeleton = skeletonsIncluded(source).find((s) => !available.has(s) && !linked.has(s));
    if (skeleton !== undefined) unbuilt.push({ file, skeleton, tests: testsDeclared([source]) });
  }
  const progTests = selected.filter((f) => !unbuilt.some((u) => u.file === f));
  // A test may open any object by its file name (bpf_object__open_file), which no include shows: with
  // every test selected (the whole selftests), every program is built, as the tree's own build does.
  if (selected.length > 0 && selected.length === progTestSources.size)
    return { progTests, progs: [...programs].sort(), unbuilt };
  const progs = new Set(programsNamedByMakefile(makefile, programs));
  for (const t of progTests)
    for (const s of skeletonsIncluded(progTestSources.get(t) ?? "")) if (available.has(s)) progs.add(s);
  return { progTests, progs: [...progs].sort(), unbuilt };
}

/**
 * What a build of the selftests in the tree itself leaves there: objects, skeletons, generated headers,
 * output directories, and extension-less executables (test_progs, urandom_read...). Sources in that
 * directory all have an extension or are data (Makefile, config, DENYLIST), none executable.
 */
export function isBuildArtefact(rel: string, mode: number): boolean {
  if (/^(tools|no_alu32|cpuv4|bpf_gcc|host-tools|feature)\//.test(rel)) return true;
  if (/\.(o|d|ko|so|a|mod|cmd|order|symvers)$|\.mod\.c$|\.(l|sub)?skel\.h$/.test(rel)) return true;
  if (/(^|\/)(vmlinux|tests)\.h$/.test(rel)) return true;
  const name = rel.split("/").pop() ?? rel;
  return !name.includes(".") && (mode & 0o111) !== 0;
}
