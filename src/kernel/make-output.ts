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
