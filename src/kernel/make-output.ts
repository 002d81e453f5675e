/** Pure readers of kbuild's output. */

const OBJECT_LINE = /^\s+(CC|AS|CC \[M\])\s+\S+\.o$/;
const WORK_LINE =
  /^\s+(CC|AS|CC \[M\]|LD|LD \[M\]|AR|BTF|BTF \[M\]|OBJCOPY|HOSTCC|HOSTLD|KSYMS|LDS|MODPOST|BTFIDS|SORTTAB)\s/;

export function isObjectLine(line: string): boolean {
  return OBJECT_LINE.test(line);
}

export function isWorkLine(line: string): boolean {
  return WORK_LINE.test(line);
}

/** The first compiler, linker or make error in a build log, for the one line printed on failure. */
export function firstError(logText: string): string | undefined {
  const lines = logText.split("\n");
  const patterns = [
    /^[^\s:]+:\d+(:\d+)?: (fatal )?error: .*/,
    /^.*\bld(\.\w+)?: .*(undefined reference|error).*/,
    /^.*(error|Error|ERROR)[: ].*/,
    /^make(\[\d+\])?: \*\*\* .*/,
  ];
  for (const re of patterns) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return hit.trim();
  }
  return undefined;
}

/**
 * What in a failed build's log says the host failed it rather than the tree: a full disk, memory exhausted
 * (the OOM killer's SIGKILL of the compiler reads "Killed signal terminated program"), or no way to start a
 * tool. Such a build says nothing about the commit; undefined when the log shows none of them.
 */
export function hostCause(logText: string): string | undefined {
  const causes: [RegExp, string][] = [
    [/No space left on device/, "the disk is full"],
    [
      /Killed signal terminated program|internal compiler error: Killed|^Killed$/m,
      "a compiler was killed (the OOM killer?)",
    ],
    [/virtual memory exhausted|Cannot allocate memory|out of memory allocating/, "memory is exhausted"],
    [/Too many open files|Resource temporarily unavailable/, "the host ran out of a resource"],
  ];
  // A compiler quotes source lines (`  42 |   dev_err(dev, "Cannot allocate memory")`) and names them in its
  // diagnostics (`foo.c:42:3: warning: ...`): neither is the host speaking.
  const spoken = logText
    .split("\n")
    .filter((l) => !/^\s*\d*\s*\|/.test(l) && !/^\S+:\d+:\d+: (warning|note)/.test(l));
  for (const [re, what] of causes) {
    const line = spoken.find((l) => re.test(l));
    if (line) return `${what}: ${line.trim()}`;
  }
  return undefined;
}

export interface CcacheCounts {
  hits: number;
  misses: number;
}

/**
 * Hits and misses from ccache's stats log (`CCACHE_STATSLOG`): one `# file` record per compiler call,
 * then its counters. Calls ccache cannot cache (preprocessing, linking) count as neither.
 */
export function ccacheCounts(statsLog: string): CcacheCounts {
  const counts = { hits: 0, misses: 0 };
  for (const record of statsLog.split(/^# .*$/m).slice(1)) {
    if (/^(direct|preprocessed)_cache_hit$/m.test(record)) counts.hits++;
    else if (/^cache_miss$/m.test(record)) counts.misses++;
  }
  return counts;
}
