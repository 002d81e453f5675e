import type { SeriesRecord } from "../kernel/tree.ts";

/** The series a run's kernel was built from, as every report names it: a title line, then a line per patch. */
export function seriesLines(s: SeriesRecord): string[] {
  const id = (m?: string) => (m ? ` <${m}>` : "");
  const n = s.patches.length;
  return [
    `series ${s.source} (v${s.version}, ${n} patch${n > 1 ? "es" : ""}) onto ${s.base} @ ${s.baseCommit.slice(0, 12)}${s.cover ? `: ${s.cover.subject}${id(s.cover.messageId)}` : ""}`,
    ...s.patches.map((p, i) => `${i + 1}/${n} ${p.commit.slice(0, 12)} ${p.subject}${id(p.messageId)}`),
  ];
}
