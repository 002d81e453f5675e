/**
 * Fragments and .config files as symbol maps, and the requested-vs-final comparison (pure). Why an option
 * did not land is kconfig-lang.ts's.
 */

export type ConfigMap = Map<string, string>;

const SET = /^CONFIG_([A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# CONFIG_([A-Za-z0-9_]+) is not set$/;

/** Parses a fragment or a .config; `# CONFIG_X is not set` is recorded as "n". */
export function parseConfig(text: string): ConfigMap {
  const map: ConfigMap = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const set = SET.exec(line);
    if (set?.[1] !== undefined && set[2] !== undefined) {
      map.set(set[1], set[2]);
      continue;
    }
    const unset = UNSET.exec(line);
    if (unset?.[1] !== undefined) map.set(unset[1], "n");
  }
  return map;
}

/** Later fragments override earlier ones, as merge_config.sh does. */
export function mergeRequests(fragments: readonly ConfigMap[]): ConfigMap {
  const out: ConfigMap = new Map();
  for (const f of fragments) for (const [k, v] of f) out.set(k, v);
  return out;
}

export interface Mismatch {
  symbol: string;
  requested: string;
  actual: string;
}

export function compareConfig(requested: ConfigMap, final: ConfigMap): Mismatch[] {
  const out: Mismatch[] = [];
  for (const [symbol, want] of requested) {
    const actual = final.get(symbol) ?? "n";
    if (actual !== want) out.push({ symbol, requested: want, actual });
  }
  return out;
}

/** A hash over the resolved config, ignoring comments and the header's tool versions. */
export function canonicalConfig(map: ConfigMap): string {
  return [...map]
    .filter(([, v]) => v !== "n")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `CONFIG_${k}=${v}`)
    .join("\n");
}
