/** Pure readers of `readelf -dlW` output: what a dynamically linked program needs to start. */

export interface ElfDeps {
  needed: string[];
  interpreter?: string;
}

export function parseReadelf(text: string): ElfDeps {
  const needed = [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1] ?? "");
  const interp = /\[Requesting program interpreter: ([^\]]+)\]/.exec(text)?.[1];
  return interp ? { needed, interpreter: interp } : { needed };
}
