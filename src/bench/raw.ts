/** The raw tools' side of each bench row: the same work as khil's stage, done by hand. */
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { freePort } from "../guest/guest.ts";
import { hostFacts } from "../guest/host-facts.ts";
import { kernelCmdline, startQemu } from "../guest/qemu.ts";
import { configSteps } from "../kernel/configure.ts";
import { type BenchRow, row, seconds } from "./stats.ts";

/** What the default suite runs in the guest, as a user would type it: the timer selftests, then khil's probe. */
export const TEST_COMMAND = "./test_progs -a timer,timer_crash,timer_lockup,timer_mim; ./timer_probe";

function sshArgs(port: number, key: string): string[] {
  return [
    "-i",
    key,
    "-p",
    String(port),
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=2",
    "root@127.0.0.1",
  ];
}

/** Configure and build from nothing, without ccache: what a user would type. */
export async function rawColdBuild(
  tree: string,
  dir: string,
  vars: string[],
  env: NodeJS.ProcessEnv,
  fragments: string[],
): Promise<void> {
  const coldEnv = { ...env, CCACHE_DISABLE: "1" };
  for (const s of configSteps(tree, dir, vars, fragments))
    await execa(s.cmd, s.args, { cwd: tree, env: { ...coldEnv, ...s.env } });
  await execa("make", ["-s", "-C", tree, `O=${dir}`, ...vars, "-j2", "all"], { env: coldEnv });
}

export async function rawBootOnce(
  arch: Arch,
  kernel: string,
  initrd: string,
  accel: "kvm" | "tcg",
  keyPath: string,
  extra?: { dir: string; files: string[]; rows: BenchRow[]; khilPush: number; khilRun: number },
): Promise<number> {
  const port = await freePort();
  const q = startQemu(
    arch,
    {
      kernel,
      initrd,
      accel,
      sshPort: port,
      memoryMiB: 2048,
      cpus: 2,
      cmdline: kernelCmdline(arch, await hostFacts(arch)),
    },
    "ignore",
  );
  const started = process.hrtime.bigint();
  let boot = Number.NaN;
  for (let i = 0; i < 600; i++) {
    const r = await execa("ssh", [...sshArgs(port, keyPath), "true"], { reject: false });
    if (r.exitCode === 0) {
      boot = Number(process.hrtime.bigint() - started) / 1e9;
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  if (extra) {
    const tarPush = await seconds(async () => {
      const tar = execa("tar", ["-czf", "-", "-C", extra.dir, ...extra.files]);
      const ssh = execa("ssh", [...sshArgs(port, keyPath), "mkdir -p /root/raw && tar -xzf - -C /root/raw"], {
        reject: false,
      });
      tar.stdout?.pipe(ssh.stdin as NodeJS.WritableStream);
      await Promise.all([tar, ssh]);
    });
    const run = await seconds(() =>
      execa("ssh", [...sshArgs(port, keyPath), `cd /root/raw && ${TEST_COMMAND}`], {
        reject: false,
      }),
    );
    extra.rows.push(row("push", [extra.khilPush], [tarPush]));
    extra.rows.push(row("run the timer tests", [extra.khilRun], [run]));
  }
  q.kill("SIGKILL");
  await q;
  return boot;
}
