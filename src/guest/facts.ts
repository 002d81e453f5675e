/** What khil reads from the guest itself about the machine it tested. */

export const FACTS_SCRIPT = [
  'echo "release=$(uname -r)"',
  'echo "machine=$(uname -m)"',
  'echo "jit=$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null || echo missing)"',
  'echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)"',
  'echo "cpus=$(grep -c ^processor /proc/cpuinfo)"',
  'echo "online=$(cat /sys/devices/system/cpu/online)"',
  'echo "config=$(zcat /proc/config.gz 2>/dev/null | sha256sum | cut -c1-64)"',
  "grep -m1 '\\.resolution:' /proc/timer_list 2>/dev/null",
].join("; ");

export interface RawFacts {
  release: string;
  machine: string;
  jit: string;
  clocksource: string;
  cpus: number;
  configSha256: string;
  hrtimerResolutionNs: number | null;
}

/** Parses FACTS_SCRIPT's output. CPUs are counted from the online mask, as get_nprocs() does. */
export function parseFacts(out: string): RawFacts {
  const kv = new Map<string, string>();
  for (const line of out.split("\n")) {
    const m = /^(\w+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) kv.set(m[1], m[2].trim());
  }
  const res = /\.resolution:\s*(\d+)\s*nsecs/.exec(out);
  return {
    release: kv.get("release") ?? "unknown",
    machine: kv.get("machine") ?? "unknown",
    jit: kv.get("jit") ?? "missing",
    clocksource: kv.get("clocksource") ?? "unknown",
    cpus: countCpus(kv.get("online") ?? "") || Number(kv.get("cpus") ?? 0),
    configSha256: kv.get("config") ?? "",
    hrtimerResolutionNs: res?.[1] ? Number(res[1]) : null,
  };
}

/** "0-1,3" -> 3 */
export function countCpus(mask: string): number {
  let n = 0;
  for (const part of mask.split(",").filter(Boolean)) {
    const [a, b] = part.split("-").map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    n += b === undefined || Number.isNaN(b) ? 1 : b - a + 1;
  }
  return n;
}
