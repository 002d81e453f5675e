import { readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { Arch } from "../arch/arch.ts";
import { archMakeVars, compilerTool } from "../arch/toolchain.ts";
import { InfraError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir } from "../host/paths.ts";
import { requireTools } from "../host/tools.ts";
import type { KernelBuild } from "../kernel/kbuild.ts";
import { runMake } from "../kernel/make.ts";
import { firstError } from "../kernel/make-output.ts";

/**
 * kselftest targets built and installed the way kselftest does it (`make -C tools/testing/selftests
 * TARGETS=... install`), objects out of the tree (`O=`), cross-compiled like the kernel, against the same
 * tree as the kernel build. The install holds `run_kselftest.sh`, its list and each target's `settings`.
 */
export async function buildKselftest(
  arch: Arch,
  build: KernelBuild,
  targets: readonly string[],
  runDir: string,
  timeoutMs: number,
): Promise<{ dir: string }> {
  await requireTools(["make", compilerTool(arch)]);
  const dir = join(
    cacheDir(),
    "kselftest",
    `${basename(build.srcDir)}-${targets.join("+").replace(/\//g, "_")}`,
  );
  const install = join(dir, "install");
  const logFile = join(runDir, `kselftest-${arch.name}.log`);
  return withLock(dir, "building kselftest", async () => {
    log(`building kselftest ${targets.join(", ")} for ${arch.name}`);
    // A test the tree no longer has must not linger in the install.
    rmSync(install, { recursive: true, force: true });
    const r = await runMake({
      args: [
        ...["-C", join(build.tree, "tools/testing/selftests"), ...archMakeVars(arch)],
        ...[`TARGETS=${targets.join(" ")}`, `O=${join(dir, "build")}`, `INSTALL_PATH=${install}`, "install"],
      ],
      env: {},
      logFile,
      timeoutMs,
      onLine: () => {},
    });
    if (r.timedOut)
      throw new InfraError(
        `timeout: kselftest build after ${Math.round(timeoutMs / 1000)} s (log: ${logFile})`,
        "selftests",
      );
    if (r.exitCode !== 0)
      throw new InfraError(
        `kselftest build failed: ${firstError(readFileSync(logFile, "utf8")) ?? `make exited ${r.exitCode}`} (log: ${logFile})`,
        "selftests",
      );
    return { dir: install };
  });
}
