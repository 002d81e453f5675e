/**
 * Pure Kconfig handling: fragments and .config files as symbol maps, the requested-vs-final comparison, and
 * the explanation of why a requested option did not land, read from the tree's own Kconfig files.
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

// ---------------------------------------------------------------------------------------------------------
// Kconfig language: only what is needed to tell why a symbol is off (its dependencies and who selects it).

export interface SymbolInfo {
  /** Every `depends on` in force for the symbol, including enclosing `if`, `menu` and `choice` blocks. */
  depends: string[];
  hasPrompt: boolean;
  selectedBy: string[];
}

export type KconfigDb = Map<string, SymbolInfo>;

/** Reads one Kconfig file; `source` lines are returned for the caller to follow (file access stays outside). */
export function parseKconfigFile(
  text: string,
  db: KconfigDb,
  inherited: string[] = [],
): { sources: { path: string; relative: boolean; optional: boolean }[] } {
  const sources: { path: string; relative: boolean; optional: boolean }[] = [];
  const lines = joinContinuations(text.split("\n"));
  const blockStack: { kind: "if" | "menu" | "choice"; deps: string[] }[] = [];
  let entry: { kind: "config" | "menu" | "choice" | "other"; sym?: string; deps: string[] } = {
    kind: "other",
    deps: [],
  };
  let helpIndent = -1;

  const outerDeps = () => [...inherited, ...blockStack.flatMap((b) => b.deps)];
  const info = (sym: string): SymbolInfo => {
    let i = db.get(sym);
    if (!i) {
      i = { depends: [], hasPrompt: false, selectedBy: [] };
      db.set(sym, i);
    }
    return i;
  };

  for (const raw of lines) {
    const indent = raw.length - raw.replace(/^\s+/, "").length;
    const line = raw.trim();
    if (helpIndent >= 0) {
      if (line === "" || indent >= helpIndent) continue;
      helpIndent = -1;
    }
    if (line === "" || line.startsWith("#")) continue;
    const [word = "", ...restWords] = line.split(/\s+/);
    const rest = restWords.join(" ");
    switch (word) {
      case "config":
      case "menuconfig": {
        entry = { kind: "config", sym: rest, deps: [] };
        const i = info(rest);
        i.depends.push(...outerDeps());
        break;
      }
      case "choice":
        entry = { kind: "choice", deps: [] };
        blockStack.push({ kind: "choice", deps: entry.deps });
        break;
      case "endchoice":
        popBlock(blockStack, "choice");
        entry = { kind: "other", deps: [] };
        break;
      case "menu":
        entry = { kind: "menu", deps: [] };
        blockStack.push({ kind: "menu", deps: entry.deps });
        break;
      case "endmenu":
        popBlock(blockStack, "menu");
        entry = { kind: "other", deps: [] };
        break;
      case "if":
        blockStack.push({ kind: "if", deps: [rest] });
        entry = { kind: "other", deps: [] };
        break;
      case "endif":
        popBlock(blockStack, "if");
        entry = { kind: "other", deps: [] };
        break;
      case "source":
      case "rsource":
      case "osource":
      case "orsource":
        sources.push({
          path: unquote(rest),
          relative: word.startsWith("r") || word.startsWith("or"),
          optional: word.startsWith("o"),
        });
        entry = { kind: "other", deps: [] };
        break;
      case "depends":
        if (restWords[0] === "on") {
          const expr = restWords.slice(1).join(" ");
          if (entry.kind === "config" && entry.sym) info(entry.sym).depends.push(expr);
          else if (entry.kind === "menu" || entry.kind === "choice") entry.deps.push(expr);
        }
        break;
      case "select":
        if (entry.kind === "config" && entry.sym) {
          const target = restWords[0];
          if (target) info(target).selectedBy.push(entry.sym);
        }
        break;
      case "bool":
      case "tristate":
      case "string":
      case "int":
      case "hex":
      case "prompt":
        if (entry.kind === "config" && entry.sym && rest.startsWith('"')) info(entry.sym).hasPrompt = true;
        break;
      case "help":
      case "---help---":
        helpIndent = indent + 1;
        break;
      default:
        break;
    }
  }
  return { sources };
}

function popBlock(stack: { kind: string }[], kind: string): void {
  for (let i = stack.length - 1; i >= 0; i--) {
    if (stack[i]?.kind === kind) {
      stack.splice(i, 1);
      return;
    }
  }
}

function unquote(s: string): string {
  return s.replace(/^"(.*)"$/, "$1");
}

function joinContinuations(lines: string[]): string[] {
  const out: string[] = [];
  let acc = "";
  for (const l of lines) {
    if (l.endsWith("\\")) {
      acc += `${l.slice(0, -1)} `;
      continue;
    }
    out.push(acc + l);
    acc = "";
  }
  if (acc) out.push(acc);
  return out;
}

// Tristate expression evaluation: n=0, m=1, y=2.
type Tok = { t: "sym" | "op" | "lp" | "rp"; v: string };

function tokenize(expr: string): Tok[] {
  const toks: Tok[] = [];
  const re = /\s*(&&|\|\||!=|<=|>=|=|<|>|!|\(|\)|"[^"]*"|[A-Za-z0-9_$.,-]+)/y;
  let m: RegExpExecArray | null = re.exec(expr);
  while (m?.[1] !== undefined) {
    const v = m[1];
    if (v === "(") toks.push({ t: "lp", v });
    else if (v === ")") toks.push({ t: "rp", v });
    else if (/^(&&|\|\||!=|<=|>=|=|<|>|!)$/.test(v)) toks.push({ t: "op", v });
    else toks.push({ t: "sym", v });
    m = re.exec(expr);
  }
  return toks;
}

function tri(v: string): number {
  return v === "y" ? 2 : v === "m" ? 1 : 0;
}

/** Evaluates a Kconfig expression against a config; undefined when it cannot be understood. */
export function evalExpr(expr: string, cfg: ConfigMap): number | undefined {
  const toks = tokenize(expr);
  let i = 0;
  const value = (s: string): string => {
    if (s === "y" || s === "m" || s === "n") return s;
    if (s.startsWith('"')) return s.slice(1, -1);
    if (/^-?[0-9]+$/.test(s)) return s;
    return cfg.get(s) ?? "n";
  };
  const primary = (): number => {
    const tok = toks[i++];
    if (!tok) throw new Error("end");
    if (tok.t === "op" && tok.v === "!") return 2 - primary();
    if (tok.t === "lp") {
      const v = or();
      if (toks[i++]?.t !== "rp") throw new Error("paren");
      return v;
    }
    if (tok.t !== "sym" || tok.v.includes("$")) throw new Error("sym");
    const next = toks[i];
    if (next?.t === "op" && ["=", "!=", "<", ">", "<=", ">="].includes(next.v)) {
      i++;
      const rhs = toks[i++];
      if (rhs?.t !== "sym") throw new Error("rhs");
      const a = value(tok.v);
      const b = value(rhs.v);
      const numeric = /^-?[0-9]+$/.test(a) && /^-?[0-9]+$/.test(b);
      const cmp = numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0;
      const ok = {
        "=": cmp === 0,
        "!=": cmp !== 0,
        "<": cmp < 0,
        ">": cmp > 0,
        "<=": cmp <= 0,
        ">=": cmp >= 0,
      }[next.v as "="];
      return ok ? 2 : 0;
    }
    return tri(value(tok.v));
  };
  const and = (): number => {
    let v = primary();
    while (toks[i]?.v === "&&") {
      i++;
      v = Math.min(v, primary());
    }
    return v;
  };
  const or = (): number => {
    let v = and();
    while (toks[i]?.v === "||") {
      i++;
      v = Math.max(v, and());
    }
    return v;
  };
  try {
    const v = or();
    return i === toks.length ? v : undefined;
  } catch {
    return undefined;
  }
}

export function symbolsIn(expr: string): string[] {
  return tokenize(expr)
    .filter((t) => t.t === "sym" && /^[A-Z0-9_]+$/.test(t.v) && !/^[0-9]+$/.test(t.v) && !/^[ymn]$/.test(t.v))
    .map((t) => t.v);
}

/** `CONFIG_BPF_JIT=y requested but not set: depends on MODULES (which is n)`. */
export function explainMismatch(m: Mismatch, db: KconfigDb, final: ConfigMap): string {
  const head = `CONFIG_${m.symbol}=${m.requested} requested but ${m.actual === "n" ? "not set" : `is ${m.actual}`}`;
  const i = db.get(m.symbol);
  if (!i) return `${head}: no such option in this tree's Kconfig`;
  const unmet = [...new Set(i.depends)].filter((d) => {
    const v = evalExpr(d, final);
    return v !== undefined && v < tri(m.requested === "m" ? "m" : "y");
  });
  if (unmet.length > 0) {
    const parts = unmet.map((d) => {
      const syms = [...new Set(symbolsIn(d))];
      const vals =
        syms.length === 1
          ? ` (which is ${final.get(syms[0] ?? "") ?? "n"})`
          : syms.length > 1
            ? ` (${syms.map((s) => `${s} is ${final.get(s) ?? "n"}`).join(", ")})`
            : "";
      return `depends on ${d}${vals}`;
    });
    return `${head}: ${parts.join("; ")}`;
  }
  if (!i.hasPrompt && i.selectedBy.length > 0) {
    return `${head}: it has no prompt and is only set when selected, by one of ${i.selectedBy.slice(0, 6).join(", ")}`;
  }
  return `${head}: its dependencies are met; another option or a choice overrides it`;
}
