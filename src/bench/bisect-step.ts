/**
 * The bench's bisect step: `khil bisect-step` on a commit that changes kernel/bpf/helpers.c, next to what
 * the step stands for done by hand: make after the same kind of change, boot to SSH, the timer tests.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { log } from "../common/log.ts";
import { cacheDir, projectRoot } from "../host/paths.ts";
import type { KernelBuild } from "../kernel/kbuild.ts";
import { GIT_ENV } from "../kernel/series.ts";
import { type BenchRow, row, seconds } from "./stats.ts";

const BODY = "BPF_CALL_0(bpf_get_numa_node_id)\n{\n";

/**
 * A change inside a function of helpers.c, as most commits under bisect are: source the compiler has not
 * seen (a ccache miss, the object unchanged) that leaves the kernel's types, and so its BTF, alone. The file is written anew, not
 * in place: the repository is hard links to the packaged tree.
 */
function editHelpers(repo: string): void {
  const f = join(repo, "kernel/bpf/helpers.c");
  const text = readFileSync(f, "utf8").replace(/\t\(void\)\d+UL; \/\* khil bench \*\/\n/, "");
  if (!text.includes(BODY)) throw new Error(`${f}: no ${BODY.split("\n")[0]} to edit`);
  rmSync(f);
  // A number of this run's: never in ccache from an earlier bench.
  writeFileSync(f, text.replace(BODY, `${BODY}\t(void)${process.hrtime.bigint()}UL; /* khil bench */\n`));
}

export async function bisectStepRow(
  arch: Arch,
  tree: string,
  vars: string[],
  env: NodeJS.ProcessEnv,
  runDir: string,
  raw: { boot: number; tests: number },
): Promise<BenchRow> {
  log("bench: a bisect step (a commit changing helpers.c), khil bisect-step then raw make + boot + tests");
  const repo = join(runDir, "bisect-repo");
  await execa("cp", ["-al", tree, repo]);
  const git = (...args: string[]) => execa("git", ["-C", repo, ...args], { env: GIT_ENV });
  await git("init", "-q");
  await git("add", "-f", "-A");
  await git("commit", "-q", "-m", "base");
  const khil = (args: string[]) =>
    execa("node", [join(projectRoot, "bin/khil.js"), ...args, "--tree", repo, "--arch", arch.name], {
      reject: false,
      all: true,
    });
  // The first step at the repository's new path builds it from ccache and its selftests: not a step's cost.
  await khil(["bisect-step"]);
  editHelpers(repo);
  await git("commit", "-q", "-am", "bench: a change to helpers.c");
  let out = "";
  const step = await seconds(async () => {
    out = String((await khil(["bisect-step"])).all ?? "");
  });
  const verdict = /bisect-step: \S+ (\w+):/.exec(out)?.[1] ?? "?";
  const build = JSON.parse((await khil(["build", "--json"])).stdout) as KernelBuild;
  editHelpers(repo);
  const make = await seconds(() =>
    execa("make", ["-s", "-C", build.srcDir, `O=${build.buildDir}`, ...vars, "-j2", "all"], { env }),
  );
  // The repository's build directory, Kconfig stage and selftests, all named after its tree key.
  const prefix = basename(build.srcDir).split("-").slice(0, 2).join("-");
  for (const dir of ["builds", "selftests"])
    for (const e of readdirSync(join(cacheDir(), dir)))
      if (e.startsWith(`${prefix}-`)) rmSync(join(cacheDir(), dir, e), { recursive: true, force: true });
  rmSync(repo, { recursive: true, force: true });
  const r = row("bisect step (helpers.c)", [step], [make + raw.boot + raw.tests], { ratio: 1.1 });
  r.note = `raw: make ${make.toFixed(1)} s + boot ${raw.boot.toFixed(1)} s + tests ${raw.tests.toFixed(1)} s; the step's verdict: ${verdict}`;
  return r;
}
