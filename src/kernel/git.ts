import { execa } from "execa";
import { KhilError } from "../common/errors.ts";

export async function git(tree: string, args: string[]): Promise<string> {
  const r = await execa("git", ["-C", tree, ...args], { reject: false });
  if (r.exitCode !== 0)
    throw new KhilError(`git ${args.join(" ")} in ${tree} failed: ${r.stderr.trim().split("\n").pop()}`);
  return r.stdout.trim();
}

export async function isGitTree(tree: string): Promise<boolean> {
  const r = await execa("git", ["-C", tree, "rev-parse", "--is-inside-work-tree"], { reject: false });
  return r.exitCode === 0 && r.stdout.trim() === "true";
}

/** What to check out again at the end: the branch if HEAD is on one, else the commit. */
export async function currentHead(tree: string): Promise<string> {
  const r = await execa("git", ["-C", tree, "symbolic-ref", "-q", "--short", "HEAD"], { reject: false });
  return r.exitCode === 0 && r.stdout.trim() ? r.stdout.trim() : git(tree, ["rev-parse", "HEAD"]);
}

export async function subject(tree: string, rev: string): Promise<string> {
  return git(tree, ["log", "-1", "--format=%s", rev]);
}
