import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { basename, join } from "node:path";
import type { Arch } from "../arch/arch.ts";
import { compilerTool, crossPrefix } from "../arch/toolchain.ts";
import { InfraError, KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { Progress } from "../common/progress.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir } from "../host/paths.ts";
import { requireTools, type Tool } from "../host/tools.ts";
import { markBuilt, toolchainId, upToDate } from "./build-stamp.ts";
import { configure, fragmentPaths } from "./configure.ts";
import { kernelMakeEnv, runMake } from "./make.ts";
import {
  type CcacheCounts,
  ccacheCounts,
  firstError,
  hostCause,
  isObjectLine,
  isWorkLine,
} from "./make-output.ts";
import { type KernelTree, treeVersion } from "./tree.ts";
import { linkTreeView } from "./tree-view.ts";

export interface KernelBuild {
  arch: string;
  tree: string;
  treeLabel: string;
  /** The tree as kbuild is run on it: see linkTreeView. */
  srcDir: string;
  buildDir: string;
  bootImage: string;
  vmlinux: string;
  config: string;
  configHash: string;
  release: string;
  log: string;
  compiled: number;
  /** What ccache did for this build's compiler calls; zero and zero when khil found nothing to build. */
  ccache: CcacheCounts;
  /** Wall time of make itself; 0 when khil found nothing to build. */
  makeSeconds: number;
  /** Options of the advisory fragments (the tree's selftests config) that did not land, with the reason. */
  configUnmet: string[];
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

export interface BuildOptions {
  tree: KernelTree;
  arch: Arch;
  fragments: readonly string[];
  /**
   * Fragments merged before khil's own (which win), whose options may fail to land without failing
   * the build (the tree's selftests config: selftests/tree-lists.ts); each that did not is in `configUnmet`.
   */
  advisory?: readonly string[];
  jobs?: number;
  runDir: string;
  timeoutMs: number;
}

export async function buildKernel(o: BuildOptions): Promise<KernelBuild> {
  const { tree, arch } = o;
  await requireTools(requiredBuildTools(arch));
  checkHeaders();
  const advisory = o.advisory ?? [];
  const fragments = fragmentPaths(arch, treeVersion(tree.path), o.fragments, advisory);
  log(
    `configuring ${arch.name} kernel from ${tree.label} with ${fragments.map((f) => basename(f)).join(", ")}`,
  );
  const { configText, configHash, treeKey, unmet } = await configure(
    tree,
    arch,
    fragments,
    o.runDir,
    advisory,
  );
  if (unmet.length)
    log(
      `${arch.name}: ${unmet.length} option${unmet.length > 1 ? "s" : ""} of the tree's selftests config did not land (the build goes on; results.json's configUnmet says why), e.g. ${unmet[0]}`,
    );
  const srcDir = join(cacheDir(), "builds", `${arch.name}-${treeKey}-${configHash}`);
  mkdirSync(srcDir, { recursive: true });
  const logFile = join(o.runDir, `build-${arch.name}.log`);
  return withLock(srcDir, `building ${srcDir}`, async () => {
    const buildDir = linkTreeView(tree.path, srcDir);
    const cfgPath = join(buildDir, ".config");
    if (!existsSync(cfgPath) || readFileSync(cfgPath, "utf8") !== configText)
      writeFileSync(cfgPath, configText);
    const { vars } = kernelMakeEnv(arch);
    const toolchain = await toolchainId(`${crossPrefix(arch)}gcc`, vars);
    const outputs = [arch.bootImage, "vmlinux", "Module.symvers"].map((f) => join(buildDir, f));
    let compiled = 0;
    let makeSeconds = 0;
    let ccache: CcacheCounts = { hits: 0, misses: 0 };
    if (await upToDate(tree.path, buildDir, outputs, toolchain))
      log(
        `building ${arch.name} kernel: up to date, nothing compiled (no tree file changed since the last build)`,
      );
    else {
      const started = Date.now();
      ({ compiled, ccache } = await makeKernel(
        srcDir,
        arch,
        buildDir,
        o.jobs ?? cpus().length,
        logFile,
        o.timeoutMs,
      ));
      markBuilt(buildDir, toolchain, started);
      makeSeconds = (Date.now() - started) / 1000;
    }
    const release = readFileSync(join(buildDir, "include", "config", "kernel.release"), "utf8").trim();
    const build: KernelBuild = {
      arch: arch.name,
      tree: tree.path,
      treeLabel: tree.label,
      srcDir,
      buildDir,
      bootImage: join(buildDir, arch.bootImage),
      vmlinux: join(buildDir, "vmlinux"),
      config: cfgPath,
      configHash,
      release,
      log: logFile,
      compiled,
      ccache,
      makeSeconds,
      configUnmet: unmet,
    };
    writeFileSync(join(buildDir, "khil-build.json"), `${JSON.stringify(build, null, 2)}\n`);
    return build;
  });
}

async function makeKernel(
  srcDir: string,
  arch: Arch,
  buildDir: string,
  jobs: number,
  logFile: string,
  timeoutMs: number,
) {
  const { vars, env } = kernelMakeEnv(arch);
  const statsLog = logFile.replace(/\.log$/, ".ccache.log");
  writeFileSync(statsLog, "");
  const countFile = join(cacheDir(), "builds", `objects-${arch.name}.txt`);
  const expected = existsSync(countFile) ? Number(readFileSync(countFile, "utf8")) : 0;
  const progress = new Progress(`building ${arch.name} kernel`);
  let objects = 0;
  let work = 0;
  const r = await runMake({
    args: ["-C", srcDir, `O=${buildDir}`, ...vars, `-j${jobs}`, "all"],
    env: { ...env, CCACHE_STATSLOG: statsLog },
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
      "harness",
    );
  }
  if (r.exitCode !== 0) {
    progress.done("failed");
    const text = readFileSync(logFile, "utf8");
    const host = hostCause(text);
    if (host)
      throw new InfraError(
        `kernel build failed on the host: ${host} (full log: ${logFile})`,
        "build",
        "harness",
      );
    const err = firstError(text);
    // make killed by a signal (its exit code is then null) is no verdict on the tree either.
    throw new InfraError(
      `kernel build failed: ${err ?? `make exited ${r.exitCode ?? r.signal}`} (full log: ${logFile})`,
      "build",
      r.signal ? "harness" : "kernel",
    );
  }
  if (objects > expected) writeFileSync(countFile, String(objects));
  const ccache = ccacheCounts(readFileSync(statsLog, "utf8"));
  progress.done(
    work === 0 && objects === 0
      ? "up to date, nothing compiled"
      : `${objects} objects compiled (ccache: ${ccache.hits} hits, ${ccache.misses} misses)`,
  );
  return { compiled: objects, ccache };
}
