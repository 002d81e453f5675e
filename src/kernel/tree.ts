import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { aptInstall } from "../host/apt.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir } from "../host/paths.ts";
import { git, isGitTree } from "./git.ts";
import { type KconfigDb, parseKconfigFile } from "./kconfig-lang.ts";

/** Debian packages of kernel trees khil knows; each carries the BPF timer series (merged in 5.15). */
export const PACKAGED_KERNELS = ["6.12", "6.1"] as const;
export const DEFAULT_KERNEL = "6.12";

export function isPackagedKernel(k: string): boolean {
  return (PACKAGED_KERNELS as readonly string[]).includes(k);
}

export interface KernelTree {
  path: string;
  /** Short human label: `linux-source-6.12 (6.12.117-1~deb12u1)` or the path of a user's tree. */
  label: string;
  /** The tree apart from its version: the package, the path; what history compares runs within. */
  name?: string;
  /** Its version: a git tree's HEAD (a series' last patch), a package's version. */
  commit?: string;
  /** The patch series applied onto the base to make this tree (`--series`). */
  series?: SeriesRecord;
}

/** What results.json and the reports say of the series a kernel was built from. */
export interface SeriesRecord {
  /** The `--series` argument. */
  source: string;
  base: string;
  baseCommit: string;
  version: number;
  cover?: { subject: string; messageId?: string };
  /** In order; `commit` is what `git am` made of each, with `trailers` its replies gave (Acked-by, ...). */
  patches: { subject: string; messageId?: string; trailers?: string[]; commit: string }[];
}

export function isKernelTree(path: string): boolean {
  return existsSync(join(path, "Kconfig")) && existsSync(join(path, "scripts", "kconfig", "merge_config.sh"));
}

/**
 * A user's tree khil can build out of tree: kbuild refuses an `O=` build of a tree that was configured in
 * place (`.config`, `include/config`), so that is said up front with the fix.
 */
export function checkUserTree(given: string): string {
  if (!existsSync(given)) throw new KhilError(`--tree ${given}: no such directory`);
  const path = realpathSync(given);
  if (!isKernelTree(path))
    throw new KhilError(`--tree ${given}: not a Linux kernel tree (no Kconfig and scripts/kconfig/)`);
  const artefacts = [".config", "include/config"].filter((f) => existsSync(join(path, f)));
  if (artefacts.length)
    throw new KhilError(
      `--tree ${given} has build artefacts of its own (${artefacts.join(", ")}): khil builds out of tree; run 'make mrproper' in it first`,
    );
  checkTimerSeries(path);
  return path;
}

/** HEAD, marked `-dirty` where tracked files differ from it: then the commit does not name the code. */
async function headOf(path: string): Promise<string> {
  const head = await git(path, ["rev-parse", "HEAD"]);
  const changed = await git(path, ["status", "--porcelain", "--untracked-files=no"]);
  return changed ? `${head}-dirty` : head;
}

export async function resolveTree(opts: { tree?: string; kernel?: string }): Promise<KernelTree> {
  if (opts.tree) {
    const path = checkUserTree(opts.tree);
    const head = (await isGitTree(path)) ? await headOf(path) : undefined;
    return { path, label: path, name: path, ...(head ? { commit: head } : {}) };
  }
  const version = opts.kernel ?? DEFAULT_KERNEL;
  if (!isPackagedKernel(version))
    throw new KhilError(
      `--kernel ${version}: valid are ${PACKAGED_KERNELS.join(", ")} (or give --tree PATH)`,
    );
  const tree = await packagedTree(version);
  checkTimerSeries(tree.path);
  return tree;
}

/** Where Debian's linux-source package of a version puts its tree. */
export function packagedTarball(version: string = DEFAULT_KERNEL): string {
  return `/usr/src/linux-source-${version}.tar.xz`;
}

async function packagedTree(version: string): Promise<KernelTree> {
  const pkg = `linux-source-${version}`;
  const tarball = packagedTarball(version);
  if (!existsSync(tarball)) await aptInstall([pkg], `the kernel tree for --kernel ${version}`);
  const { stdout: debVersion } = await execa("dpkg-query", ["-W", "--showformat", "$" + "{Version}", pkg]);
  const label = `${pkg} (${debVersion})`;
  const treesDir = join(cacheDir(), "trees");
  const dest = join(treesDir, `${pkg}_${debVersion.replace(/[^A-Za-z0-9.+-]/g, "_")}`);
  const tree = { path: dest, label, name: pkg, commit: debVersion };
  if (isKernelTree(dest)) return tree;
  // Runs started together on an empty cache extract once: the others wait, then find the tree. Without the
  // lock, the last to finish would remove a tree the first is already configuring.
  await withLock(dest, `extracting ${tarball}`, async () => {
    if (isKernelTree(dest)) return;
    // Extract next to the destination and rename, so an interrupted extraction never looks like a tree.
    const tmp = `${dest}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    log(`extracting ${tarball} into ${dest} (about 20 s, once)`);
    await execa("tar", ["-xf", tarball, "-C", tmp]);
    const [top] = readdirSync(tmp);
    if (!top) throw new KhilError(`${tarball} is empty: reinstall with apt-get install --reinstall ${pkg}`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(join(tmp, top), dest);
    rmSync(tmp, { recursive: true, force: true });
  });
  return tree;
}

const TIMER_API = ["bpf_timer_init", "bpf_timer_set_callback", "bpf_timer_start", "bpf_timer_cancel"];

export function missingTimerApi(uapiHeader: string): string[] {
  const missing = TIMER_API.filter((h) => !uapiHeader.includes(h));
  if (!/struct bpf_timer \{/.test(uapiHeader)) missing.unshift("struct bpf_timer");
  return missing;
}

function checkTimerSeries(path: string): void {
  const header = join(path, "include", "uapi", "linux", "bpf.h");
  const text = existsSync(header) ? readFileSync(header, "utf8") : "";
  const missing = missingTimerApi(text);
  if (missing.length > 0)
    throw new KhilError(
      `${path} does not carry the BPF timer series (merged in 5.15): include/uapi/linux/bpf.h lacks ${missing.join(", ")}`,
    );
}

/** "6.12" from the tree's top-level Makefile. */
export function treeVersion(path: string): string {
  const mk = readFileSync(join(path, "Makefile"), "utf8");
  const v = /^VERSION = (\d+)$/m.exec(mk)?.[1];
  const p = /^PATCHLEVEL = (\d+)$/m.exec(mk)?.[1];
  if (!v || !p) throw new KhilError(`${path}/Makefile: no VERSION and PATCHLEVEL: not a kernel tree`);
  return `${v}.${p}`;
}

export function versionLess(a: string, b: string): boolean {
  const [a1 = 0, a2 = 0] = a.split(".").map(Number);
  const [b1 = 0, b2 = 0] = b.split(".").map(Number);
  return a1 < b1 || (a1 === b1 && a2 < b2);
}

/** Reads the tree's Kconfig files for one architecture (SRCARCH), following `source` lines. */
export function loadKconfigDb(treePath: string, srcArch: string): KconfigDb {
  const db: KconfigDb = new Map();
  const seen = new Set<string>();
  const visit = (rel: string, dir: string) => {
    const expanded = rel.replace(/\$\(SRCARCH\)/g, srcArch).replace(/\$\(srctree\)\//g, "");
    const file = join(dir, expanded);
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const { sources } = parseKconfigFile(readFileSync(file, "utf8"), db);
    for (const s of sources) visit(s.path, s.relative ? join(file, "..") : treePath);
  };
  visit("Kconfig", treePath);
  return db;
}
