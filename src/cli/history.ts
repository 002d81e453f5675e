import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { KhilError } from "../common/errors.ts";
import { matchesAny } from "../common/glob.ts";
import { defaultHistoryFile, HistoryDb } from "../history/db.ts";
import { historyText, historyView } from "../history/view.ts";
import { collect } from "./options.ts";

export function registerHistory(program: Command): void {
  program
    .command("history")
    .description(
      "each test's last results, flake rate, first failure and quarantine per cell; each measure's trend",
    )
    .option("--history <file>", "the results database (default $KHIL_HISTORY, else the cache's)")
    .option("--cell <text>", "only the cells whose name holds this text (e.g. arm64, tcg, linux-source-6.1)")
    .option("--test <glob>", "only these tests (repeatable)", collect, [])
    .option("--json", "the same as JSON, for tools")
    .action((o) => {
      const given = (o.history as string | undefined) ?? process.env.KHIL_HISTORY;
      if (given === "none") throw new KhilError("--history none: there is no database to show", 2);
      const file = given ? resolve(given) : defaultHistoryFile();
      if (!existsSync(file))
        throw new KhilError(
          `${file}: no results database there yet (a run records itself in it; or give --history FILE)`,
          2,
        );
      const db = new HistoryDb(file);
      const like = o.cell ? `%${String(o.cell).replace(/[%_\\]/g, "\\$&")}%` : "%";
      const tests = o.test as string[];
      const keep = (name: string) => !tests.length || matchesAny(name, tests);
      const view = historyView(
        db.results(like).filter((r) => keep(r.name)),
        o.test.length ? [] : db.measures(like),
      );
      db.close();
      process.stdout.write(o.json ? `${JSON.stringify(view, null, 2)}\n` : `${historyText(view)}\n`);
    });
}
