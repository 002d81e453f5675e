import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";

/** The build directory's name inside its view. */
export const OBJ_DIR = "obj";
const MARKER = ".khil-tree-view";
/**
 * Not linked: `.git` would make setlocalversion take the view for a work tree whose every file changed
 * (a `-dirty` release, and a release that differs per commit for identical code); a `.config` would make
 * kbuild refuse the tree as configured in place.
 */
const NOT_LINKED = new Set([".git", ".config", OBJ_DIR, MARKER]);

/**
 * kbuild names every source by `$(srctree)`, which is the tree's absolute path unless the build directory
 * is right inside the tree: then it is `..`. The compiler's command lines, and with them ccache's keys, would
 * otherwise differ for every place a tree lives (a user's checkout, a bisect repository, a worktree for a
 * series), and a second tree would miss ccache on nearly every file. So khil builds in `<view>/obj`, where
 * `<view>` holds one link per top-level entry of the tree: kbuild sees `srctree := ..` and a tree at any path
 * compiles with the same command lines.
 *
 * Brought up to date on every call (a bisect step can add or drop a top-level entry); a directory that is
 * not a view (an older khil's build directory at the same path) is replaced.
 */
export function linkTreeView(tree: string, view: string): string {
  if (existsSync(view) && !existsSync(join(view, MARKER))) rmSync(view, { recursive: true, force: true });
  mkdirSync(join(view, OBJ_DIR), { recursive: true });
  writeFileSync(join(view, MARKER), `${tree}\n`);
  const wanted = new Map(
    readdirSync(tree)
      .filter((e) => !NOT_LINKED.has(e))
      .map((e) => [e, join(tree, e)]),
  );
  for (const e of readdirSync(view)) {
    if (NOT_LINKED.has(e)) continue;
    const p = join(view, e);
    if (lstatSync(p).isSymbolicLink() && readlinkSync(p) === wanted.get(e)) wanted.delete(e);
    else rmSync(p, { recursive: true, force: true });
  }
  for (const [e, target] of wanted) symlinkSync(target, join(view, e));
  return join(view, OBJ_DIR);
}
