import type { Arch } from "../arch/arch.ts";
import type { AccelChoice } from "../guest/accel.ts";
import type { Restored } from "../guest/boot.ts";
import type { Guest } from "../guest/guest.ts";
import { shellQuote } from "../guest/ssh.ts";
import type { KernelBuild } from "../kernel/kbuild.ts";
import type { KernelWatch } from "./kernel-log.ts";
import type { Selection, Suite } from "./suite.ts";

export const GUEST_DIR = "/root/khil";

/** A command line run in the directory files are pushed to, which exists even for a suite that pushes nothing. */
export function inGuestDir(argv: readonly string[]): string {
  return `mkdir -p ${GUEST_DIR} && cd ${GUEST_DIR} && ${shellQuote(argv)}`;
}

export type Command = Suite["commands"][number];

/** A command's argv with `extra` arguments, under `env` where it sets variables. */
export function commandArgv(cmd: Command, extra: readonly string[] = []): string[] {
  const env = Object.entries(cmd.env ?? {}).map(([k, v]) => `${k}=${v}`);
  return [...(env.length ? ["env", ...env] : []), ...cmd.run, ...extra];
}

/** `--test` patterns split between the commands that take subtests as arguments and everything else. */
export interface CliSelection {
  /** The patterns left for the suite's own selection (test_progs', kselftest's). */
  suite: string[];
  /** By command name: the subtest globs to pass, an empty list for all of them; absent: not selected. */
  args: Map<string, string[]>;
}

/** Everything the suite's commands run with, in one booted guest whose files are pushed. */
export interface SuiteRunContext {
  arch: Arch;
  suite: Suite;
  selection: Selection;
  guest: Guest;
  build: KernelBuild;
  accel: AccelChoice;
  runDir: string;
  /** Failed tests are run again alone up to this many times; one that passes then is `flaky`. */
  retries: number;
  watch: KernelWatch;
  /** The user's `--test` patterns, split between the commands; absent: the suite's own selection. */
  cli?: CliSelection;
  /**
   * A fresh copy of the guest as it was saved before any test (guest/boot.ts), for a test run again; absent
   * where the run saved no snapshot: a rerun then runs in `guest`.
   */
  freshGuest?: () => Promise<Restored>;
  /** What stopped the run from outside the kernel so far (khil's deadline, QEMU killed), if anything. */
  interruption?: () => string | undefined;
}
