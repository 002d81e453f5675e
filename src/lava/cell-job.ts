/**
 * One matrix cell made into a LAVA job: built here (kernel, selftests) like a local cell, its files put in
 * the initramfs, kernel and initramfs placed in the artefacts directory by content hash, and the job that
 * boots them at the URL the lab fetches them from.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { KhilError } from "../common/errors.ts";
import { jitAsked } from "../guest/facts.ts";
import { buildImage } from "../guest/image.ts";
import { kernelCmdline } from "../guest/qemu.ts";
import { shellQuote } from "../guest/ssh.ts";
import { guestKey } from "../guest/ssh-key.ts";
import { type CellAxes, cellSpec, type MachineSpec, newRun, prepareCell } from "../run/cell.ts";
import { type Command, commandArgv, GUEST_DIR } from "../run/context.ts";
import { programsAmong } from "../run/push.ts";
import { type Selection, selectTests } from "../run/suite.ts";
import { type JobCommand, lavaJob } from "./job.ts";

/** A copy of `file` in `dir` named by its content, so that a lab's cache never serves a stale one. */
function placeArtefact(file: string, dir: string): string {
  const hash = createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16);
  const name = `${hash}-${basename(file)}`;
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, name))) copyFileSync(file, join(dir, name));
  return name;
}

/**
 * The command line a suite's command gets in the job: test_progs with the selection and the deny list
 * as `-a`/`-d` (no `test_progs -l` round trip: nobody is there to ask), anything else as written.
 */
function jobCommand(cmd: Command, sel: Selection): JobCommand {
  if (cmd.kselftest !== undefined)
    throw new KhilError(`command ${cmd.name}: kselftest commands do not run in LAVA jobs yet`);
  const tests = cmd.tests ?? sel.tests;
  const extra =
    cmd.parser === "test_progs"
      ? [
          "-a",
          tests.join(","),
          ...(sel.denied.length ? ["-d", sel.denied.map((d) => d.pattern).join(",")] : []),
        ]
      : [];
  return { name: cmd.name, line: `cd ${GUEST_DIR} && ${shellQuote(commandArgv(cmd, extra))}` };
}

export async function cellJob(
  cell: CellAxes,
  machine: MachineSpec,
  o: { artifacts: string; artifactsUrl: string; runDir: string },
): Promise<string> {
  const spec = await cellSpec(cell, machine, o.runDir);
  const { arch, suite } = spec;
  const append = spec.machine.append;
  const run = newRun(spec);
  const prepared = await prepareCell(spec, run);
  if (!prepared)
    throw new KhilError(
      `${cell.name}: ${run.error?.stage ?? "build"} failed: ${run.error?.message ?? ""}`,
      1,
    );
  const { build, pushes } = prepared;
  const image = await buildImage(
    arch,
    guestKey().publicKey,
    pushes.flatMap((x) => programsAmong(x.dir, x.files)),
    pushes,
  );
  const url = o.artifactsUrl.replace(/\/?$/, "/");
  const jit = jitAsked(append).enable === "0" ? "off" : "on";
  const sel = selectTests(suite, arch.name, build.release, jit);
  return lavaJob({
    cell: cell.name,
    arch,
    suite: suite.name,
    kernelUrl: url + placeArtefact(build.bootImage, o.artifacts),
    initrdUrl: url + placeArtefact(image.path, o.artifacts),
    cmdline: kernelCmdline(arch, {}, append),
    cpus: machine.cpus,
    commands: suite.commands.map((c) => jobCommand(c, sel)),
    jobMinutes: 30,
    testMinutes: Math.ceil(suite.commands.reduce((s, c) => s + c.timeout, 0) / 60),
  });
}
