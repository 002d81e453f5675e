/** boot, exec and shell: a guest of the kernel built from the options, for a person or a script. */
import type { Command } from "commander";
import { archNames } from "../arch/arch.ts";
import { KhilError } from "../common/errors.ts";
import { bootGuest, buildFor, type GuestRequest, saveSnapshot } from "../guest/boot.ts";
import type { Guest } from "../guest/guest.ts";
import type { Accel } from "../guest/qemu.ts";
import { shellQuote } from "../guest/ssh.ts";
import { guestKey } from "../guest/ssh-key.ts";
import { createRunDir } from "../host/run-dir.ts";
import { inGuestDir } from "../run/context.ts";
import { resolveDeadlines } from "../run/deadlines.ts";
import { type Push, programsAmong } from "../run/push.ts";
import {
  cliDeadlines,
  fragmentsOf,
  hostPushes,
  machineOptions,
  type Opts,
  oneArch,
  pushOption,
  treeOf,
  treeOptions,
} from "./options.ts";

function guestOptions(cmd: Command): Command {
  return machineOptions(treeOptions(cmd)).option(
    "--arch <arch>",
    `one of ${archNames().join(", ")}`,
    "x86_64",
  );
}

async function guestRequest(o: Opts, kind: string): Promise<GuestRequest> {
  const arch = oneArch(String(o.arch), "this command");
  const tree = await treeOf(o);
  const d = resolveDeadlines(cliDeadlines(o));
  return {
    arch,
    tree,
    fragments: fragmentsOf(o),
    jobs: o.jobs as number | undefined,
    runDir: createRunDir(`${kind}-${arch.name}`),
    accel: o.accel as Accel | undefined,
    buildTimeoutMs: d.build * 1000,
    bootTimeoutMs: d.boot * 1000,
    cpus: o.cpus as number,
    memoryMiB: o.memory as number,
    append: o.append as string[],
  };
}

/** Boots a guest whose image carries the shared libraries of the programs among `files` (`--push`). */
async function boot(o: Opts, kind: string, files: readonly Push[] = []) {
  const req = await guestRequest(o, kind);
  const programs = files.flatMap((x) => programsAmong(x.dir, x.files));
  const { guest } = await bootGuest(req, await buildFor(req), programs);
  return guest;
}

/**
 * A ready guest with `files` pushed, for exec and shell: restored from the snapshot of this very guest
 * (kernel, image, machine, files) when there is one, else booted, pushed and saved for the next time.
 * `--no-snapshot` boots every time.
 */
async function readyGuest(o: Opts, kind: string, files: readonly Push[]): Promise<Guest> {
  if (!o.snapshot) {
    const guest = await boot(o, kind, files);
    await pushInto(guest, files);
    return guest;
  }
  const req = await guestRequest(o, kind);
  const programs = files.flatMap((x) => programsAmong(x.dir, x.files));
  const snap = { restore: true, pushes: files };
  const { guest, readiness, identity } = await bootGuest(req, await buildFor(req), programs, undefined, snap);
  if (!readiness.restored) {
    await pushInto(guest, files);
    if (identity) await saveSnapshot(guest, identity);
  }
  return guest;
}

async function pushInto(guest: Guest, files: readonly Push[]): Promise<void> {
  for (const x of files) await guest.ssh.push(x.dir, x.files, x.dest, 60_000);
}

const NO_SNAPSHOT = "boot cold every time: neither restore a snapshot of this guest nor save one";

export function registerGuest(program: Command): void {
  guestOptions(program.command("boot").description("boot the guest and keep it until Ctrl-C")).action(
    async (o) => {
      const guest = await boot(o, "boot");
      process.stdout.write(
        `guest ${guest.arch.name} ready in ${guest.bootSeconds.toFixed(1)} s (${guest.accel}); console: ${guest.consoleLog}\n` +
          `reach it with: ssh -i ${guestKey().path} -p ${guest.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@127.0.0.1\n` +
          "Ctrl-C stops it.\n",
      );
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (!guest.running) {
            clearInterval(t);
            resolve();
          }
        }, 500);
      });
      await guest.stop();
      throw new KhilError("the guest stopped by itself; see its console log", 1);
    },
  );

  pushOption(
    guestOptions(
      program.command("exec").description("boot, run one command over SSH, exit with its exit code"),
    ),
  )
    .option("--no-snapshot", NO_SNAPSHOT)
    .argument("<command...>", "command and arguments, after --")
    .action(async (command: string[], o) => {
      const files = hostPushes(o);
      const guest = await readyGuest(o, "exec", files);
      try {
        // Pushed files are where the command starts, as a suite's commands find theirs.
        const r = await guest.ssh.exec(files.length ? inGuestDir(command) : shellQuote(command), {
          stdout: process.stdout,
          stderr: process.stderr,
        });
        process.exitCode = r.code ?? 255;
      } finally {
        await guest.stop();
      }
    });

  pushOption(
    guestOptions(
      program.command("shell").description("boot and open an interactive shell; the guest stops with it"),
    ),
  )
    .option("--no-snapshot", NO_SNAPSHOT)
    .action(async (o) => {
      const files = hostPushes(o);
      const guest = await readyGuest(o, "shell", files);
      try {
        process.exitCode = await guest.ssh.shell();
      } finally {
        await guest.stop();
      }
    });
}
