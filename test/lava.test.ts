import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadArch } from "../src/arch/arch.ts";
import { CONSOLE_PROMPT, lavaJob } from "../src/lava/job.ts";

describe("LAVA job definitions", () => {
  const job = (arch: string) =>
    parse(
      lavaJob({
        cell: `${arch}-6.12-bpf-timer-default`,
        arch: loadArch(arch),
        suite: "bpf-timer",
        kernelUrl: "http://lab/k",
        initrdUrl: "http://lab/i",
        cmdline: ["console=ttyAMA0", "panic=-1"],
        cpus: 2,
        commands: [{ name: "test_progs", line: "cd /root/khil && ./test_progs -a 'timer*'" }],
        jobMinutes: 30,
        testMinutes: 10,
      }),
    );

  it("takes the lab's QEMU context from the arch data, with the run's CPUs", () => {
    expect(job("arm64").context).toEqual({
      arch: "arm64",
      machine: "virt,gic-version=3",
      cpu: "max,pauth-impdef=on",
      extra_options: ["-no-reboot", "-smp 2"],
    });
    expect(job("x86_64").context.arch).toBe("amd64");
  });

  it("boots from tmpfs with khil's command line and a console shell, then types each command at its prompt", () => {
    const [deploy, boot, test] = job("arm64").actions;
    expect(deploy.deploy.images.kernel.image_arg).toBe(
      '-kernel {kernel} -append "console=ttyAMA0 panic=-1 khil.console=shell"',
    );
    expect(boot.boot.prompts).toEqual([CONSOLE_PROMPT]);
    const [step] = test.test.interactive[0].script;
    expect(step).toEqual({
      name: "test_progs",
      command: "cd /root/khil && ./test_progs -a 'timer*'; echo khil-exit-test_progs=$?",
      successes: [{ message: "khil-exit-test_progs=0" }],
      failures: [{ message: "khil-exit-test_progs=[1-9][0-9]*" }],
    });
  });
});
