/**
 * A LAVA job definition for one cell (pure): the lab's QEMU device type boots khil's kernel and initramfs
 * from URLs (`deploy: to: tmpfs`), and an `interactive` test action types the suite's commands at the
 * console prompt. The suite's files ride in the initramfs, so the job needs no LAVA overlay (no libguestfs,
 * no block device in the guest).
 */
import { stringify } from "yaml";
import type { Arch } from "../arch/arch.ts";

/** What khil's init prints as its console shell's prompt when the kernel command line asks for one. */
export const CONSOLE_PROMPT = "khil# ";
export const CONSOLE_SHELL_PARAM = "khil.console=shell";

export interface JobCommand {
  name: string;
  /** The command line as the guest's shell runs it, in the directory the files are in. */
  line: string;
}

export interface JobInput {
  cell: string;
  arch: Arch;
  suite: string;
  kernelUrl: string;
  initrdUrl: string;
  cmdline: string[];
  cpus: number;
  commands: JobCommand[];
  /** Minutes: the whole job, and the test action (every command). */
  jobMinutes: number;
  testMinutes: number;
}

/** The line a command's output starts after: the console's echo of the typed line is apart from it. */
export function beginMarker(name: string): string {
  return `khil-begin-${name}`;
}

/** The line a command's exit code is reported by: what the test action's patterns look for. */
export function exitMarker(name: string, code: string): string {
  return `khil-exit-${name}=${code}`;
}

export function lavaJob(j: JobInput): string {
  const context = {
    ...j.arch.lava.context,
    extra_options: [...((j.arch.lava.context.extra_options as string[] | undefined) ?? []), `-smp ${j.cpus}`],
  };
  // LAVA adds no kernel command line for tmpfs: without -append the guest is silent after the firmware.
  const append = [...j.cmdline, CONSOLE_SHELL_PARAM].join(" ");
  // LAVA refuses a job any of whose timeouts exceeds the job's own; a short whole-run deadline (khil
  // cancels the job at it anyway) bounds them all.
  const within = (minutes: number) => ({ minutes: Math.min(minutes, j.jobMinutes) });
  const job = {
    device_type: j.arch.lava.deviceType,
    job_name: `khil ${j.cell}`,
    priority: "medium",
    visibility: "public",
    timeouts: {
      job: { minutes: j.jobMinutes },
      action: within(10),
      connection: within(2),
    },
    context,
    actions: [
      {
        deploy: {
          to: "tmpfs",
          timeout: within(5),
          images: {
            kernel: { url: j.kernelUrl, image_arg: `-kernel {kernel} -append "${append}"` },
            initrd: { url: j.initrdUrl, image_arg: "-initrd {initrd}" },
          },
        },
      },
      { boot: { method: "qemu", media: "tmpfs", timeout: within(5), prompts: [CONSOLE_PROMPT] } },
      {
        test: {
          timeout: within(j.testMinutes),
          interactive: [
            {
              name: j.suite.replace(/[^-_a-zA-Z0-9.]/g, "_"),
              prompts: [CONSOLE_PROMPT],
              script: j.commands.map((c) => ({
                name: c.name,
                // The marker's `$?` is the command's own exit code; its echo of the command line cannot match.
                command: `echo ${beginMarker(c.name)}; ${c.line}; echo ${exitMarker(c.name, "$?")}`,
                successes: [{ message: exitMarker(c.name, "0") }],
                failures: [{ message: exitMarker(c.name, "[1-9][0-9]*") }],
              })),
            },
          ],
        },
      },
    ],
  };
  return stringify(job, { lineWidth: 0 });
}
