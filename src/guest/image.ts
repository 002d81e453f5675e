import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { execa } from "execa";
import { z } from "zod";
import type { Arch } from "../arch/arch.ts";
import { elfDeps } from "../common/elf.ts";
import { KhilError } from "../common/errors.ts";
import { log } from "../common/log.ts";
import { parseYamlFile } from "../common/yaml.ts";
import { hostPackageOf, Sysroot } from "../host/debian.ts";
import { withLock } from "../host/lock.ts";
import { cacheDir, projectRoot } from "../host/paths.ts";

const RecipeSchema = z.strictObject({
  packages: z.array(z.string()),
  programs: z.array(z.string()),
  runtimeLibraries: z.array(z.string()),
  init: z.string(),
});

const imagesDir = join(projectRoot, "images");

/** Debian packages and programs from them a suite adds to the base image (the suite's `image:`). */
export interface ImageAddition {
  packages: readonly string[];
  programs: readonly string[];
}

/** images/base.yaml, with what a suite adds: one recipe, so one cache key for the image it makes. */
function loadRecipe(add?: ImageAddition) {
  const file = join(imagesDir, "base.yaml");
  const base = parseYamlFile(file, readFileSync(file, "utf8"), RecipeSchema);
  const recipe = add
    ? {
        ...base,
        packages: [...new Set([...base.packages, ...add.packages])],
        programs: [...new Set([...base.programs, ...add.programs])],
      }
    : base;
  return { file, recipe };
}

/** Follows symlinks inside `root`, treating absolute link targets as relative to it. */
function resolveIn(root: string, rel: string): string | undefined {
  let cur = rel.replace(/^\/+/, "");
  for (let hops = 0; hops < 20; hops++) {
    const full = join(root, cur);
    if (!existsSync(full)) {
      // a dangling link or no such file; existsSync follows links, so check the link itself
      try {
        lstatSync(full);
      } catch {
        return undefined;
      }
    }
    const st = lstatSync(full);
    if (!st.isSymbolicLink()) return full;
    const target = readlinkSync(full);
    cur = target.startsWith("/") ? target.slice(1) : join(dirname(cur), target);
  }
  return undefined;
}

function libDirs(a: Arch): string[] {
  return [`lib/${a.triplet}`, `usr/lib/${a.triplet}`, "lib", "usr/lib"];
}

/**
 * Finds every shared library the programs need, unpacking the Debian packages that provide them: first the
 * package the host has the same library from (multiarch -dev packages khil built against), else the
 * dependencies of the packages already unpacked.
 */
async function resolveLibraries(arch: Arch, sys: Sysroot, programs: string[], extraSonames: string[]) {
  const libs = new Map<string, string>(); // soname -> real file in the sysroot
  let interpreter: { path: string; file: string } | undefined;
  const queue: { file: string; soname?: string }[] = programs.map((file) => ({ file }));
  for (const s of extraSonames) queue.push({ file: "", soname: s });
  const find = (soname: string) => {
    for (const d of libDirs(arch)) {
      const f = resolveIn(sys.root, join(d, soname));
      if (f) return f;
    }
    return undefined;
  };
  const provide = async (soname: string, forFile: string): Promise<string> => {
    let found = find(soname);
    if (found) return found;
    for (const d of [`/lib/${arch.triplet}`, `/usr/lib/${arch.triplet}`]) {
      const pkg = existsSync(join(d, soname)) ? await hostPackageOf(join(d, soname)) : undefined;
      if (pkg) {
        await sys.unpack(pkg);
        found = find(soname);
        if (found) return found;
      }
    }
    for (let round = 0; round < 4 && !found; round++) {
      const next = sys
        .unpacked()
        .flatMap((p) => sys.depends(p))
        .filter((p) => !sys.has(p));
      if (next.length === 0) break;
      for (const p of new Set(next)) await sys.unpack(p);
      found = find(soname);
    }
    if (!found)
      throw new KhilError(
        `no ${arch.debianArch} Debian package found for ${soname} (needed by ${forFile || "glibc at run time"}): install its -dev package for ${arch.debianArch}, e.g. apt-get install <lib>-dev:${arch.debianArch}`,
      );
    return found;
  };
  // A library pushed with the programs (liburandom_read.so beside urandom_read, found at run time through
  // its rpath `.`) comes with them, not from a package.
  const pushed = new Set(programs.map((f) => basename(f)));
  const seen = new Set<string>();
  while (queue.length > 0) {
    const item = queue.shift();
    if (!item) break;
    let file = item.file;
    if (item.soname) {
      if (libs.has(item.soname)) continue;
      file = await provide(item.soname, "");
      libs.set(item.soname, file);
    }
    if (seen.has(file)) continue;
    seen.add(file);
    const deps = elfDeps(file);
    if (deps.interpreter && !interpreter) {
      const f =
        resolveIn(sys.root, deps.interpreter) ??
        (await provide(deps.interpreter.split("/").pop() ?? "", file));
      interpreter = { path: deps.interpreter, file: f };
    }
    for (const soname of deps.needed) {
      if (libs.has(soname) || pushed.has(soname)) continue;
      const f = await provide(soname, file);
      libs.set(soname, f);
      queue.push({ file: f });
    }
  }
  return { libs, interpreter };
}

/**
 * The image recipe's Debian packages downloaded and unpacked: work that needs no kernel, started beside its
 * build on a first run (apt-get waits on the network, make on the CPUs). False when all were there.
 */
export async function unpackGuestPackages(arch: Arch, add?: ImageAddition): Promise<boolean> {
  const { recipe } = loadRecipe(add);
  const sys = new Sysroot(arch.debianArch);
  if (recipe.packages.every((p) => sys.has(p))) return false;
  await withLock(sys.dir, "preparing guest packages", () => unpackAll(sys, recipe.packages, add));
  return true;
}

/** Unpacks the recipe's packages; one the suite named that Debian does not have is the suite's mistake. */
async function unpackAll(sys: Sysroot, packages: readonly string[], add?: ImageAddition): Promise<void> {
  for (const p of packages)
    try {
      await sys.unpack(p);
    } catch (e) {
      if (add?.packages.includes(p) && /Unable to locate|No packages found/.test((e as Error).message))
        throw new KhilError(
          `the suite's image: packages: ${p}: Debian has no ${sys.debianArch} package of that name (apt-cache search NAME finds them)`,
          2,
        );
      throw e;
    }
}

export interface GuestImage {
  path: string;
  hash: string;
}

/**
 * Builds (or finds in the cache) the initramfs for one architecture. `hostPrograms` are binaries pushed into
 * the guest later (test_progs): the image carries their libraries.
 */
export async function buildImage(
  arch: Arch,
  publicKey: string,
  hostPrograms: string[] = [],
  /** Files carried in the image itself (a LAVA job's suite, with no SSH to push it): `dir/f` at `dest/f`. */
  payload: readonly { dir: string; files: string[]; dest: string }[] = [],
  add?: ImageAddition,
): Promise<GuestImage> {
  const { recipe } = loadRecipe(add);
  const sys = new Sysroot(arch.debianArch);
  return withLock(sys.dir, "preparing guest packages", async () => {
    await unpackAll(sys, recipe.packages, add);
    const programs = recipe.programs.map((p) => {
      const f = resolveIn(sys.root, p);
      if (!f)
        throw new KhilError(
          `${add?.programs.includes(p) ? "the suite's image:" : "images/base.yaml:"} program ${p} is not in packages ${recipe.packages.join(", ")} (a path inside the ${arch.debianArch} package, e.g. bin/ip: the unpacked packages are in ${sys.root})`,
        );
      return { dest: p, file: f };
    });
    const { libs, interpreter } = await resolveLibraries(
      arch,
      sys,
      [...programs.map((p) => p.file), ...hostPrograms],
      recipe.runtimeLibraries,
    );
    const init = readFileSync(join(imagesDir, recipe.init), "utf8");
    const files: { dest: string; file: string }[] = [
      ...programs,
      ...[...libs].map(([soname, file]) => ({ dest: `lib/${arch.triplet}/${soname}`, file })),
    ];
    if (interpreter) files.push({ dest: interpreter.path.replace(/^\//, ""), file: interpreter.file });
    for (const p of payload)
      for (const f of p.files) files.push({ dest: join(p.dest.replace(/^\//, ""), f), file: join(p.dir, f) });
    const h = createHash("sha256").update(init).update(publicKey).update(JSON.stringify(recipe));
    for (const f of [...files].sort((a, b) => (a.dest < b.dest ? -1 : 1)))
      h.update(f.dest).update(readFileSync(f.file));
    const hash = h.digest("hex").slice(0, 16);
    const out = join(cacheDir(), "images", `${arch.name}-${hash}.cpio.gz`);
    if (existsSync(out)) return { path: out, hash };
    log(
      `building the ${arch.name} guest image (${files.length} files from ${sys.unpacked().length} packages)`,
    );
    const stage = `${out}.root-${process.pid}`;
    rmSync(stage, { recursive: true, force: true });
    for (const f of files) {
      const d = join(stage, f.dest);
      mkdirSync(dirname(d), { recursive: true });
      copyFileSync(f.file, d);
      chmodSync(d, 0o755);
    }
    writeFileSync(join(stage, "init"), init, { mode: 0o755 });
    mkdirSync(join(stage, "etc"), { recursive: true });
    writeFileSync(join(stage, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    writeFileSync(join(stage, "etc/group"), "root:x:0:\ntty:x:5:\n");
    writeFileSync(join(stage, "etc/shells"), "/bin/sh\n");
    mkdirSync(join(stage, "root/.ssh"), { recursive: true, mode: 0o700 });
    chmodSync(join(stage, "root"), 0o700);
    writeFileSync(join(stage, "root/.ssh/authorized_keys"), `${publicKey.trim()}\n`, { mode: 0o600 });
    const list = await execa("find", ["."], { cwd: stage });
    const cpio = await execa("cpio", ["-o", "-H", "newc", "-R", "0:0", "--quiet"], {
      cwd: stage,
      input: `${list.stdout.split("\n").sort().join("\n")}\n`,
      encoding: "buffer",
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(`${out}.tmp`, gzipSync(cpio.stdout, { level: 1 }));
    renameSync(`${out}.tmp`, out);
    rmSync(stage, { recursive: true, force: true });
    return { path: out, hash };
  });
}
