import { isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { KhilError } from "./errors.ts";

/**
 * Parses a YAML file and validates it against a schema; a mistake is reported as `file:line: field: what`,
 * the position taken from the YAML node the schema complained about.
 */
export function parseYamlFile<T extends z.ZodType>(file: string, text: string, schema: T): z.infer<T> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const first = doc.errors[0];
  if (first) {
    const { line } = lineCounter.linePos(first.pos[0]);
    throw new KhilError(`${file}:${line}: invalid YAML: ${first.message.split("\n")[0]}`);
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // what only building the values finds: an alias to no anchor, an alias bomb
    throw new KhilError(`${file}:1: invalid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new KhilError(`${file}: invalid`);
  let path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  let field = path.join(".");
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    path = [...path, key];
    field = path.join(".");
    const line = lineOf(doc, lineCounter, path, true);
    throw new KhilError(`${file}:${line}: ${field}: unknown key '${key}'`);
  }
  const line = lineOf(doc, lineCounter, path, false);
  throw new KhilError(`${file}:${line}: ${field || "(top level)"}: ${issue.message}`);
}

function lineOf(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
  path: (string | number)[],
  isKey: boolean,
): number {
  // Walk up until a node exists: a missing field is reported at its parent.
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    if (isKey && n === path.length && n > 0) {
      const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
      const pair =
        parent && "items" in (parent as object)
          ? (parent as { items: { key: unknown }[] }).items.find(
              (p) => isNode(p.key) && (p.key as { value?: unknown }).value === sub[sub.length - 1],
            )
          : undefined;
      const range = pair && isNode(pair.key) ? pair.key.range : undefined;
      if (range) return lc.linePos(range[0]).line;
      continue;
    }
    const node = n === 0 ? doc.contents : doc.getIn(sub, true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return 1;
}
