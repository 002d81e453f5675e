/**
 * Snapshots of a ready guest, once SSH answers and the files are pushed: its RAM (a sparse copy of the file
 * it runs in) and its device state (QEMU migration with the RAM left out), restored by starting the same
 * QEMU with that RAM mapped copy-on-write and the state loaded over QMP. Not `savevm`: khil's guests have
 * no disk (the image is an initramfs) and savevm needs a qcow2 drive to hold the state. Not a whole
 * migration stream either: loading one visits every page of the guest's RAM (2.7-3.8 s for 2 GiB here),
 * where a mapped RAM file costs only the pages the guest touches (a restore to SSH in 0.45 s).
 *
 * A snapshot is keyed by everything that makes it that guest: the kernel and image bytes, QEMU's version
 * and its arguments (machine, CPUs, memory, accelerator, command line), and what was pushed. A guest asked
 * for with any of these different is another guest: it boots cold, and the reason says which part differs.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { isAlive } from "../host/children.ts";
import { cacheDir } from "../host/paths.ts";

/** What makes a ready guest that guest: each part by name, so a mismatch can say which one differs. */
export type SnapshotIdentity = Record<string, string>;

export interface SnapshotMeta {
  key: string;
  arch: string;
  identity: SnapshotIdentity;
  savedAt: string;
  /** On disk: the RAM copy is sparse, so this is its blocks, not its size. */
  bytes: number;
  saveSeconds: number;
  /** The save's own files in the snapshot's directory: a pair that is never rewritten, only replaced. */
  files: SnapshotFiles;
}

/** A snapshot's two files. */
export interface SnapshotFiles {
  state: string;
  ram: string;
}

/**
 * The snapshot layout, part of every identity: a snapshot in another one (an older khil's whole migration
 * stream) is another guest's, and the reason for booting cold says "differs in format".
 */
export const SNAPSHOT_FORMAT = "ram file + device state (x-ignore-shared)";

/** What a file takes on disk (a sparse one less than its size). */
function diskBytes(path: string): number {
  return existsSync(path) ? statSync(path).blocks * 512 : 0;
}

/** The cache's snapshots kept under this many bytes, least recently used evicted first. */
const DEFAULT_MAX_BYTES = 8 * 1024 ** 3;

/** `$KHIL_SNAPSHOTS`, else `snapshots/` in khil's cache. */
export function snapshotsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KHIL_SNAPSHOTS ? resolve(env.KHIL_SNAPSHOTS) : join(cacheDir(env), "snapshots");
}

const fileHashes = new Map<string, string>();

/** A file's content hash, remembered per path, size and mtime (kernel images and initramfs are large). */
export function fileHash(path: string): string {
  const st = statSync(path);
  const memo = `${path}\0${st.size}\0${st.mtimeMs}`;
  const known = fileHashes.get(memo);
  if (known) return known;
  const h = createHash("sha256").update(readFileSync(path)).digest("hex").slice(0, 16);
  fileHashes.set(memo, h);
  return h;
}

const qemuVersions = new Map<string, string>();

export async function qemuVersion(binary: string): Promise<string> {
  const known = qemuVersions.get(binary);
  if (known) return known;
  const r = await execa(binary, ["--version"], { reject: false });
  const v = r.stdout.split("\n")[0]?.trim() || `unknown (${binary} --version exited ${r.exitCode})`;
  qemuVersions.set(binary, v);
  return v;
}

/** Files pushed into a guest: `files` below `dir` on the host, put below `dest` in the guest. */
export interface PushedFiles {
  dir: string;
  files: readonly string[];
  dest: string;
}

/** What the guest was given over SSH: each pushed file by path, size and mtime, and where it went. */
export function pushedIdentity(pushes: readonly PushedFiles[]): string {
  const h = createHash("sha256");
  for (const p of pushes)
    for (const f of p.files) {
      const st = statSync(join(p.dir, f));
      h.update(`${p.dest}/${f} ${st.size} ${st.mtimeMs}\n`);
    }
  return h.digest("hex").slice(0, 16);
}

export function snapshotKey(identity: SnapshotIdentity): string {
  const h = createHash("sha256");
  for (const k of Object.keys(identity).sort()) h.update(`${k}=${identity[k]}\n`);
  return h.digest("hex").slice(0, 24);
}

function metaOf(dir: string): SnapshotMeta | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as SnapshotMeta;
  } catch {
    return undefined;
  }
}

export type Lookup = { files: SnapshotFiles; meta: SnapshotMeta } | { reason: string };

/**
 * The snapshot of the guest `identity` names, or why there is none: none of this arch at all, or the
 * nearest one (fewest parts differing) and the parts in which it differs.
 */
export function findSnapshot(arch: string, identity: SnapshotIdentity, root = snapshotsDir()): Lookup {
  const key = snapshotKey(identity);
  const dir = join(root, key);
  const meta = metaOf(dir);
  const files = meta?.files && { state: join(dir, meta.files.state), ram: join(dir, meta.files.ram) };
  if (meta && files && existsSync(files.state) && existsSync(files.ram)) {
    // Used now: the least recently used is evicted first.
    const now = new Date();
    utimesSync(dir, now, now);
    return { files, meta };
  }
  const others = (existsSync(root) ? readdirSync(root) : [])
    .map((d) => metaOf(join(root, d)))
    .filter((m): m is SnapshotMeta => m?.arch === arch);
  if (!others.length) return { reason: `no snapshot of an ${arch} guest in ${root}` };
  const differing = (m: SnapshotMeta) =>
    Object.keys({ ...identity, ...m.identity }).filter((k) => identity[k] !== m.identity[k]);
  const nearest = others.reduce((a, b) => (differing(b).length < differing(a).length ? b : a));
  return {
    reason: `no snapshot of this guest: the nearest (${nearest.key}, saved ${nearest.savedAt}) differs in ${differing(nearest).join(", ")}`,
  };
}

/**
 * A new snapshot's directory and the files this save writes, named by the save alone: meta.json names the
 * pair once both are complete, so a restore never takes one save's RAM with another's device state, and a
 * guest still running from an earlier pair keeps it.
 */
export function snapshotTarget(identity: SnapshotIdentity, root = snapshotsDir()) {
  const key = snapshotKey(identity);
  const dir = join(root, key);
  mkdirSync(dir, { recursive: true });
  const save = `${process.pid}-${randomUUID().slice(0, 8)}`;
  return { key, dir, files: { state: `state.${save}`, ram: `ram.${save}` } };
}

/** Where a target's files are. */
export function targetPaths(t: ReturnType<typeof snapshotTarget>): SnapshotFiles {
  return { state: join(t.dir, t.files.state), ram: join(t.dir, t.files.ram) };
}

/**
 * Makes a save the snapshot (meta.json replaced in one rename), removes the pairs it replaces, then evicts
 * the cache down to its size.
 */
export function commitSnapshot(
  t: ReturnType<typeof snapshotTarget>,
  meta: Omit<SnapshotMeta, "key" | "bytes" | "files">,
  maxBytes = Number(process.env.KHIL_SNAPSHOT_MAX_BYTES ?? DEFAULT_MAX_BYTES),
): SnapshotMeta {
  const paths = targetPaths(t);
  const full: SnapshotMeta = {
    ...meta,
    key: t.key,
    bytes: diskBytes(paths.ram) + diskBytes(paths.state),
    files: t.files,
  };
  const tmp = join(t.dir, `meta.json.${t.files.state}`);
  writeFileSync(tmp, `${JSON.stringify(full, null, 2)}\n`);
  renameSync(tmp, join(t.dir, "meta.json"));
  for (const f of readdirSync(t.dir))
    if (/^(ram|state)\./.test(f) && !Object.values(t.files).includes(f) && !savingNow(f))
      rmSync(join(t.dir, f), { force: true });
  evict(join(t.dir, ".."), maxBytes, t.key);
  return full;
}

/** A save's file whose process is still alive may be another save under way: it is that one's to commit. */
function savingNow(file: string): boolean {
  const pid = Number(/^\w+\.(\d+)-/.exec(file)?.[1]);
  return Boolean(pid) && pid !== process.pid && isAlive(pid);
}

/** Removes the least recently used snapshots until the rest fit in `maxBytes` (never `keep`). */
export function evict(root: string, maxBytes: number, keep?: string): string[] {
  const all = readdirSync(root)
    .map((key) => {
      const dir = join(root, key);
      // Every file of it: its pair, and any left by a save that was stopped half way.
      const bytes = readdirSync(dir).reduce((n, f) => n + diskBytes(join(dir, f)), 0);
      return { key, dir, bytes, used: statSync(dir).mtimeMs };
    })
    .sort((a, b) => a.used - b.used);
  let total = all.reduce((n, s) => n + s.bytes, 0);
  const gone: string[] = [];
  for (const s of all) {
    if (total <= maxBytes) break;
    if (s.key === keep) continue;
    rmSync(s.dir, { recursive: true, force: true });
    total -= s.bytes;
    gone.push(s.key);
  }
  return gone;
}
