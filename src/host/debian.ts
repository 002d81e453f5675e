import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { InfraError, KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { cacheDir } from "../host/paths.ts";

/**
 * A directory per Debian architecture into which packages of that architecture are unpacked with
 * `dpkg-deb -x`: nothing in them is run on the host.
 */
/** How long one package may take to download. */
const APT_TIMEOUT_MS = 300_000;

export class Sysroot {
  /** Everything of this architecture's: what a lock on the sysroot locks. */
  readonly dir: string;
  readonly root: string;
  private readonly debs: string;
  private readonly stateDir: string;

  constructor(readonly debianArch: string) {
    this.dir = join(cacheDir(), "sysroot", debianArch);
    this.root = join(this.dir, "root");
    this.debs = join(this.dir, "debs");
    this.stateDir = join(this.dir, "unpacked");
    for (const d of [this.root, this.debs, this.stateDir]) mkdirSync(d, { recursive: true });
  }

  has(pkg: string): boolean {
    return existsSync(join(this.stateDir, pkg));
  }

  /** The version of an unpacked package. */
  version(pkg: string): string | undefined {
    const f = join(this.stateDir, pkg);
    return existsSync(f) ? (JSON.parse(readFileSync(f, "utf8")).version as string) : undefined;
  }

  /** Depends of an unpacked package, names only (alternatives: the first). */
  depends(pkg: string): string[] {
    const f = join(this.stateDir, pkg);
    if (!existsSync(f)) return [];
    const dep = JSON.parse(readFileSync(f, "utf8")).depends as string;
    return dep
      .split(",")
      .map(
        (d) =>
          d
            .split("|")[0]
            ?.trim()
            .split(/[\s(:]/)[0] ?? "",
      )
      .filter(Boolean);
  }

  unpacked(): string[] {
    return readdirSync(this.stateDir);
  }

  async unpack(pkg: string): Promise<void> {
    if (this.has(pkg)) return;
    const spec = `${pkg}:${this.debianArch}`;
    // A mirror that stops answering must not hold the run forever: apt's own timeouts, then khil's.
    const r = await execa(
      "apt-get",
      ["download", "-q", "-o", "Acquire::http::Timeout=60", "-o", "Acquire::Retries=2", spec],
      { cwd: this.debs, reject: false, all: true, timeout: APT_TIMEOUT_MS },
    );
    if (r.timedOut)
      throw new InfraError(
        `apt-get download ${spec} gave no package in ${APT_TIMEOUT_MS / 1000} s: the host's network or its Debian mirror`,
        "packages",
        "harness",
      );
    if (r.exitCode !== 0) {
      const hint = /Unable to locate|No packages found/.test(String(r.all))
        ? ` (is the architecture enabled? dpkg --add-architecture ${this.debianArch} && apt-get update)`
        : "";
      // The host's set-up or its network, never the kernel's nor the user's input.
      throw new InfraError(
        `apt-get download ${spec} failed${hint}: ${String(r.all).trim().split("\n").pop()}`,
        "packages",
        "harness",
      );
    }
    const deb = readdirSync(this.debs).find(
      (f) => f.startsWith(`${pkg}_`) && f.endsWith(`_${this.debianArch}.deb`),
    );
    const debAll =
      deb ?? readdirSync(this.debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith("_all.deb"));
    if (!debAll) throw new KhilError(`apt-get download ${spec} left no .deb in ${this.debs}`);
    const debPath = join(this.debs, debAll);
    await execa("dpkg-deb", ["-x", debPath, this.root]);
    const fields = await execa("dpkg-deb", ["-f", debPath, "Version", "Depends", "Pre-Depends"]);
    const get = (k: string) => new RegExp(`^${k}: (.*)$`, "m").exec(fields.stdout)?.[1] ?? "";
    const depends = [get("Pre-Depends"), get("Depends")].filter(Boolean).join(", ");
    const tmp = join(this.stateDir, `.${pkg}.tmp`);
    writeFileSync(tmp, JSON.stringify({ version: get("Version"), depends }));
    renameSync(tmp, join(this.stateDir, pkg));
    log(`unpacked ${spec} ${get("Version")}`);
  }
}

/** The Debian package that installed a file on the host (for libraries of multiarch -dev packages). */
export async function hostPackageOf(path: string): Promise<string | undefined> {
  const r = await execa("dpkg", ["-S", path], { reject: false });
  if (r.exitCode !== 0) return undefined;
  const first = r.stdout.split("\n")[0] ?? "";
  return first.split(":")[0]?.split(",")[0]?.trim();
}
