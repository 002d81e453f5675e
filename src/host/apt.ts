import { execa } from "execa";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";

let updated = false;

/**
 * Installs Debian packages khil needs, saying which and why. Without root it cannot, and says what to run.
 */
export async function aptInstall(packages: readonly string[], why: string): Promise<void> {
  if (packages.length === 0) return;
  if (process.getuid?.() !== 0)
    throw new KhilError(
      `${why} needs ${packages.join(" ")}: run as root: apt-get install ${packages.join(" ")}`,
    );
  log(`installing ${packages.join(" ")} with apt-get (${why})`);
  const install = () =>
    execa("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages], {
      reject: false,
      env: { DEBIAN_FRONTEND: "noninteractive" },
    });
  let r = await install();
  if (r.exitCode !== 0 && !updated) {
    updated = true;
    await execa("apt-get", ["update", "-q"], { reject: false });
    r = await install();
  }
  if (r.exitCode !== 0) {
    const line =
      String(r.stderr)
        .split("\n")
        .find((l) => l.startsWith("E:")) ?? `exit ${r.exitCode}`;
    throw new KhilError(`apt-get install ${packages.join(" ")} failed: ${line}`);
  }
}
