import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { basename, join, resolve } from "node:path";
import { execa } from "execa";
import { type Arch, compilerTool, crossPrefix } from "../arch/arch.ts";
import { InfraError, KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { Progress } from "../common/progress.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir, projectRoot } from "../host/paths.ts";
import { requireTools, type Tool } from "../host/tools.ts";
import { markBuilt, toolchainId, upToDate } from "./build-stamp.ts";
import {
  type ConfigMap,
  canonicalConfig,
  compareConfig,
  explainMismatch,
  mergeRequests,
  parseConfig,
} from "./kconfig.ts";
import { runMake } from "./make.ts";
import { firstError, isObjectLine, isWorkLine } from "./make-output.ts";
import { type KernelTree, loadKconfigDb, treeVersion, versionLess } from "./tree.ts";

export interface KernelBuild {
  arch: string;
  tree: string;
  treeLabel: string;
  buildDir: string;
  bootImage: string;
  vmlinux: string;
  config: string;
  configHash: string;
  release: string;
  log: string;
  compiled: number;
  /** Wall time of make itself; 0 when khil found nothing to build. */
  makeSeconds: number;
}

export const BASE_FRAGMENTS = ["common.config", "bpf-timer.config"];

/**
 * The fragments of a build: khil's own, the arch's (some only from a kernel version on), then the suite's
 * and the user's, later ones winning.
 */
export function fragmentPaths(arch: Arch, kernelVersion: string, extra: readonly string[]): string[] {
  const since = arch.fragmentsSince
    .filter((f) => !versionLess(kernelVersion, f.since))
    .flatMap((f) => f.fragments);
  const own = [...BASE_FRAGMENTS, arch.configFragment, ...since].map((f) =>
    join(projectRoot, "kernel-config", f),
  );
  // A suite may name one of khil's own fragments again: merge each file once.
  return [...new Set([...own, ...extra.map((f) => resolve(f))])];
}

function readFragment(path: string): ConfigMap {
  try {
    return parseConfig(readFileSync(path, "utf8"));
  } catch (e) {
    throw new KhilError(`cannot read config fragment ${path}: ${(e as Error).message}`);
  }
}

function shortHash(s: string, n = 12): string {
  return createHash("sha256").update(s).digest("hex").slice(0, n);
}

export function makeEnv(arch: Arch): { vars: string[]; env: NodeJS.ProcessEnv } {
  const cache = cacheDir();
  const prefix = crossPrefix(arch);
  return {
    vars: [`ARCH=${arch.kernelArch}`, `CROSS_COMPILE=${prefix}`, `CC=ccache ${prefix}gcc`],
    // BASEDIR and NOHASHDIR let ccache hit across build directories (a new config key, a bisect step).
    env: {
      CCACHE_DIR: process.env.KHIL_CCACHE_DIR ?? join(cache, "ccache"),
      CCACHE_BASEDIR: cache,
      CCACHE_NOHASHDIR: "1",
      CCACHE_MAXSIZE: "20G",
    },
  };
}

function requiredBuildTools(arch: Arch): Tool[] {
  return ["make", "gcc", "flex", "bison", "bc", "pahole", "ccache", compilerTool(arch)];
}

function checkHeaders(): void {
  const need: [string, string][] = [
    ["/usr/include/gelf.h", "libelf-dev"],
    ["/usr/include/openssl/ssl.h", "libssl-dev"],
  ];
  const missing = need.filter(([f]) => !existsSync(f)).map(([, p]) => p);
  if (missing.length)
    throw new KhilError(`missing host headers: install with: apt-get install ${missing.join(" ")}`);
}

/**
 * What identifies the Kconfig state of a tree: the commit of a clean git tree, or the package version of a
 * tree khil extracted itself (those are never edited). Any other tree is configured every time.
 */
async function treeStamp(path: string): Promise<string | undefined> {
  if (path.startsWith(join(cacheDir(), "trees"))) return `packaged:${path}`;
  if (!existsSync(join(path, ".git"))) return undefined;
  const head = await execa("git", ["-C", path, "rev-parse", "HEAD"], { reject: false });
  const dirty = await execa("git", ["-C", path, "status", "--porcelain", "--untracked-files=no"], {
    reject: false,
  });
  if (head.exitCode !== 0 || dirty.exitCode !== 0 || dirty.stdout.trim()) return undefined;
  return `git:${path}:${head.stdout.trim()}`;
}

/** tinyconfig + fragments through the tree's merge_config.sh + olddefconfig, then every request checked. */
async function configure(tree: KernelTree, arch: Arch, fragments: string[], runDir: string) {
  const requested = mergeRequests(fragments.map(readFragment));
  const treeKey = shortHash(tree.path, 10);
  const stage = join(cacheDir(), "builds", `${arch.name}-${treeKey}-kconfig`);
  mkdirSync(stage, { recursive: true });
  const { vars, env } = makeEnv(arch);
  const logFile = join(runDir, `kconfig-${arch.name}.log`);
  const out = createWriteStream(logFile, { flags: "a" });
  const run = async (cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) => {
    const p = execa(cmd, args, { cwd: tree.path, env: { ...env, ...extraEnv }, reject: false, all: true });
    p.all?.pipe(out, { end: false });
    const r = await p;
    if (r.exitCode !== 0) {
      const text = String(r.all ?? "");
      throw new InfraError(
        `${cmd} ${args.join(" ")} failed (see ${logFile}): ${firstError(text) ?? ""}`,
        "config",
      );
    }
  };
  // The same fragments on the same tree state give the same config: skip the three make steps then.
  const stamp = await treeStamp(tree.path);
  const key = stamp
    ? shortHash(JSON.stringify([fragments, fragments.map((f) => readFileSync(f, "utf8")), vars, stamp]), 32)
    : undefined;
  const keyFile = join(stage, "khil-config-key");
  await withLock(stage, "configuring", async () => {
    if (
      key &&
      existsSync(keyFile) &&
      readFileSync(keyFile, "utf8") === key &&
      existsSync(join(stage, ".config"))
    )
      return;
    rmSync(keyFile, { force: true });
    await run("make", ["-s", `O=${stage}`, ...vars, "tinyconfig"]);
    await run(
      "bash",
      ["scripts/kconfig/merge_config.sh", "-m", "-O", stage, join(stage, ".config"), ...fragments],
      {
        KCONFIG_CONFIG: join(stage, ".config"),
      },
    );
    await run("make", ["-s", `O=${stage}`, ...vars, "olddefconfig"]);
    if (key) writeFileSync(keyFile, key);
  });
  out.end();
  const configText = readFileSync(join(stage, ".config"), "utf8");
  const final = parseConfig(configText);
  const mismatches = compareConfig(requested, final);
  if (mismatches.length > 0) {
    const db = loadKconfigDb(tree.path, arch.srcArch);
    const lines = mismatches.map((m) => explainMismatch(m, db, final));
    throw new KhilError(
      `${mismatches.length} requested option${mismatches.length > 1 ? "s" : ""} did not land (nothing was compiled):\n  ${lines.join("\n  ")}`,
    );
  }
  const configHash = shortHash(canonicalConfig(final));
  return { configText, configHash, treeKey };
}

export interface BuildOptions {
  tree: KernelTree;
  arch: Arch;
  fragments: readonly string[];
  jobs?: number;
  runDir: string;
  timeoutMs: number;
}

export async function buildKernel(o: BuildOptions): Promise<KernelBuild> {
  const { tree, arch } = o;
  await requireTools(requiredBuildTools(arch));
  checkHeaders();
  const fragments = fragmentPaths(arch, treeVersion(tree.path), o.fragments);
  log(
    `configuring ${arch.name} kernel from ${tree.label} with ${fragments.map((f) => basename(f)).join(", ")}`,
  );
  const { configText, configHash, treeKey } = await configure(tree, arch, fragments, o.runDir);
  const buildDir = join(cacheDir(), "builds", `${arch.name}-${treeKey}-${configHash}`);
  mkdirSync(buildDir, { recursive: true });
  const logFile = join(o.runDir, `build-${arch.name}.log`);
  return withLock(buildDir, `building ${buildDir}`, async () => {
    const cfgPath = join(buildDir, ".config");
    if (!existsSync(cfgPath) || readFileSync(cfgPath, "utf8") !== configText)
      writeFileSync(cfgPath, configText);
    const { vars } = makeEnv(arch);
    const toolchain = await toolchainId(`${crossPrefix(arch)}gcc`, vars);
    const outputs = [arch.bootImage, "vmlinux", "Module.symvers"].map((f) => join(buildDir, f));
    let compiled = 0;
    let makeSeconds = 0;
    if (await upToDate(tree.path, buildDir, outputs, toolchain))
      log(
        `building ${arch.name} kernel: up to date, nothing compiled (no tree file changed since the last build)`,
      );
    else {
      const started = Date.now();
      compiled = await makeKernel(tree, arch, buildDir, o.jobs ?? cpus().length, logFile, o.timeoutMs);
      markBuilt(buildDir, toolchain, started);
      makeSeconds = (Date.now() - started) / 1000;
    }
    const release = readFileSync(join(buildDir, "include", "config", "kernel.release"), "utf8").trim();
    const build: KernelBuild = {
      arch: arch.name,
      tree: tree.path,
      treeLabel: tree.label,
      buildDir,
      bootImage: join(buildDir, arch.bootImage),
      vmlinux: join(buildDir, "vmlinux"),
      config: cfgPath,
      configHash,
      release,
      log: logFile,
      compiled,
      makeSeconds,
    };
    writeFileSync(join(buildDir, "khil-build.json"), `${JSON.stringify(build, null, 2)}\n`);
    return build;
  });
}

async function makeKernel(
  tree: KernelTree,
  arch: Arch,
  buildDir: string,
  jobs: number,
  logFile: string,
  timeoutMs: number,
) {
  const { vars, env } = makeEnv(arch);
  const countFile = join(cacheDir(), "builds", `objects-${arch.name}.txt`);
  const expected = existsSync(countFile) ? Number(readFileSync(countFile, "utf8")) : 0;
  const progress = new Progress(`building ${arch.name} kernel`);
  let objects = 0;
  let work = 0;
  const r = await runMake({
    args: ["-C", tree.path, `O=${buildDir}`, ...vars, `-j${jobs}`, "all"],
    env,
    logFile,
    timeoutMs,
    onLine: (l) => {
      if (isWorkLine(l)) work++;
      if (isObjectLine(l)) {
        objects++;
        progress.update(expected ? `${objects}/~${expected} objects` : `${objects} objects`);
      }
    },
  });
  if (r.timedOut) {
    progress.done("stopped");
    throw new InfraError(
      `timeout: build after ${Math.round(timeoutMs / 1000)} s (${objects} objects compiled; log: ${logFile})`,
      "build",
    );
  }
  if (r.exitCode !== 0) {
    progress.done("failed");
    const err = firstError(readFileSync(logFile, "utf8"));
    throw new InfraError(
      `kernel build failed: ${err ?? `make exited ${r.exitCode}`} (full log: ${logFile})`,
      "build",
    );
  }
  if (objects > expected) writeFileSync(countFile, String(objects));
  progress.done(work === 0 && objects === 0 ? "up to date, nothing compiled" : `${objects} objects compiled`);
  return objects;
}
