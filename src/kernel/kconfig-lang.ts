/**
 * The Kconfig language, only as far as needed to tell why a requested option is off: its dependencies
 * (with enclosing if/menu/choice blocks), who selects it, and the tristate value of an expression. Pure:
 * reading the tree's files is the caller's. One file past ~250 lines because the reader, the evaluator and
 * the explanation share its types and nothing else uses them.
 */
import type { ConfigMap, Mismatch } from "./kconfig.ts";

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
      case "menu":
        // A choice or menu's own `depends on` lines apply to every entry inside it.
        entry = { kind: word, deps: [] };
        blockStack.push({ kind: word, deps: entry.deps });
        break;
      case "if":
        blockStack.push({ kind: "if", deps: [rest] });
        entry = { kind: "other", deps: [] };
        break;
      case "endchoice":
      case "endmenu":
      case "endif":
        popBlock(blockStack, word.slice(3));
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
  // `&&` is the lower tristate of its operands and `||` the higher, left to right.
  const chain =
    (op: string, operand: () => number, combine: (a: number, b: number) => number) => (): number => {
      let v = operand();
      while (toks[i]?.v === op) {
        i++;
        v = combine(v, operand());
      }
      return v;
    };
  const and = chain("&&", primary, Math.min);
  const or = chain("||", and, Math.max);
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
