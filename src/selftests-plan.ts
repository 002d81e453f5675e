/**
 * Pure planning of a cut-down BPF selftests build: which prog_tests and BPF programs to copy so that
 * test_progs is built from the selected tests only, and a broken unrelated test cannot stop the build.
 */

export function globToRegExp(glob: string): RegExp {
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`);
}

export function matchesAny(name: string, globs: readonly string[]): boolean {
  return globs.some((g) => globToRegExp(g).test(name));
}

/** Skeleton headers a prog_test includes name the BPF programs it needs: `#include "timer.skel.h"`. */
export function skeletonsIncluded(source: string): string[] {
  return [...source.matchAll(/#include\s+"([A-Za-z0-9_]+)\.(?:l?skel|subskel)\.h"/g)].map((m) => m[1] ?? "");
}

/** Programs the selftests Makefile names itself (linked skeletons' parts, light skeletons, helpers' programs). */
export function programsNamedByMakefile(makefile: string, programs: readonly string[]): string[] {
  const words = new Set(makefile.match(/[A-Za-z0-9_]+/g) ?? []);
  return programs.filter((p) => words.has(p));
}

export interface SelftestsPlan {
  progTests: string[];
  progs: string[];
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
  const progTests = [...progTestSources.keys()].filter((n) => matchesAny(n, progTestGlobs)).sort();
  const available = new Set(programs);
  const progs = new Set(programsNamedByMakefile(makefile, programs));
  for (const t of progTests)
    for (const s of skeletonsIncluded(progTestSources.get(t) ?? "")) if (available.has(s)) progs.add(s);
  return { progTests, progs: [...progs].sort() };
}
