import { KhilError } from "../common/errors.ts";
import { inGuestDir, type SuiteRunContext } from "./context.ts";
import { denyReason } from "./suite.ts";

export interface CheckedSelection {
  denied: { test: string; reason: string }[];
  toRun: string[];
}

/**
 * Checks the suite's selection against the binary's own list (`test_progs -l`): a selection that matches
 * nothing is an error, never a green run of zero tests. Denied tests are split off with their reason.
 */
export async function checkSelection(c: SuiteRunContext, run: string[]): Promise<CheckedSelection> {
  const r = await c.guest.ssh.capture(inGuestDir([...run, "-a", c.selection.tests.join(","), "-l"]), 120_000);
  const listed = r.out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^[A-Za-z0-9_/-]+$/.test(l));
  if (r.code !== 0 || listed.length === 0) {
    const all = await c.guest.ssh.capture(inGuestDir([...run, "-l"]), 120_000);
    const names = all.out.split("\n").filter(Boolean);
    throw new KhilError(
      `the suite's selection (${c.selection.tests.join(", ")}) matches no test in this test_progs; it has ${names.length} tests: ${names.slice(0, 30).join(", ")}${names.length > 30 ? ", ..." : ""}`,
      1,
    );
  }
  const denied = listed
    .map((test) => ({ test, reason: denyReason(c.selection, test) }))
    .filter((d): d is { test: string; reason: string } => d.reason !== undefined);
  const toRun = listed.filter((t) => !denied.some((d) => d.test === t));
  return { denied, toRun };
}
