import { dirname } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { isAlive } from "../../src/host/children.ts";
import { projectRoot } from "../../src/host/paths.ts";
import { HOUR, khil, qemuLeftIn, resultsOf } from "../helpers.ts";

describe("khil exec: real guests reached over SSH", () => {
  it(
    "x86_64: the BPF JIT is on",
    async () => {
      const r = await khil(["exec", "--arch", "x86_64", "--", "cat", "/proc/sys/net/core/bpf_jit_enable"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout.trim()).toBe("1");
      expect(r.stderr).toMatch(/ready in \d+\.\d s \((tcg|kvm)\)/);
      expect(r.stderr).toMatch(/booting x86_64 .* with (tcg|kvm) \(.+\)/);
      // A command longer than the guest's dropbear takes (9000 bytes: bpf-full's -a list) still runs whole.
      const long = "t".repeat(20_000);
      const l = await khil([
        "exec",
        "--arch",
        "x86_64",
        "--",
        "sh",
        "-c",
        'printf "%s\\n" "$1" | wc -c; exit 3',
        "sh",
        long,
      ]);
      expect(l.exitCode, l.all).toBe(3);
      expect(l.stdout.trim()).toBe("20001");
    },
    HOUR,
  );

  it(
    "arm64: the guest is aarch64, and a command's exit code comes back",
    async () => {
      const r = await khil(["exec", "--arch", "arm64", "--", "uname", "-m"]);
      expect(r.exitCode, r.all).toBe(0);
      expect(r.stdout.trim()).toBe("aarch64");
      expect(r.stderr).toMatch(/with tcg \(the host is amd64, the guest arm64\)/);
      const fail = await khil(["exec", "--arch", "arm64", "--", "sh", "-c", "exit 7"]);
      expect(fail.exitCode).toBe(7);
    },
    HOUR,
  );

  it(
    "SIGINT to khil boot leaves no QEMU of that run behind",
    async () => {
      const p = execa("node", [`${projectRoot}/bin/khil.js`, "boot", "--arch", "x86_64"], {
        cwd: projectRoot,
        reject: false,
        all: true,
      });
      let out = "";
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("guest not ready in 10 min")), 10 * 60_000);
        p.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("Ctrl-C stops it")) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      // The run's own QEMUs, as khil recorded them next to the console log it printed.
      const consoleLog = /console: (\S+)/.exec(out)?.[1];
      if (!consoleLog) throw new Error(`no console path in:\n${out}`);
      const dir = dirname(consoleLog);
      const qemus = qemuLeftIn(dir);
      expect(qemus.length).toBe(1);
      p.kill("SIGINT");
      const r = await p;
      expect(r.exitCode).toBe(130);
      for (const pid of qemus) expect(isAlive(pid)).toBe(false);
      expect(qemuLeftIn(dir)).toEqual([]);
    },
    HOUR,
  );

  it(
    "SIGINT to khil boot-and-test while a test runs keeps its results, interrupted, and no QEMU",
    async () => {
      const p = khil(["boot-and-test", "--arch", "x86_64"]);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no test running in 40 min")), 40 * 60_000);
        p.stderr?.on("data", (d: Buffer) => {
          if (d.toString().includes("running ./test_progs")) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      p.kill("SIGINT");
      const r = await p;
      expect(r.exitCode, r.all).toBe(130);
      const { dir, results } = resultsOf(r.stdout);
      const [run] = results.runs;
      expect(run?.status).toBe("error");
      expect(run?.interrupted).toMatch(/^SIGINT: khil was stopped while this ran/);
      expect(qemuLeftIn(dir)).toEqual([]);
    },
    HOUR,
  );
});
