import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import type { Arch } from "../arch/arch.ts";
import { log } from "../common/log.ts";
import { textTable } from "../common/table.ts";
import { chooseAccel } from "../guest/accel.ts";
import { Guest } from "../guest/guest.ts";
import { buildImage } from "../guest/image.ts";
import { guestKey } from "../guest/ssh-key.ts";
import { projectRoot } from "../host/paths.ts";
import { fragmentPaths } from "../kernel/configure.ts";
import { buildKernel, type KernelBuild } from "../kernel/kbuild.ts";
import { kernelMakeEnv } from "../kernel/make.ts";
import { packagedTarball, resolveTree, treeVersion } from "../kernel/tree.ts";
import { readRunDir } from "../report/merge.ts";
import type { Results } from "../report/results.ts";
import { MEASURE_HEAD, measureRows } from "../report/summary.ts";
import { GUEST_DIR } from "../run/context.ts";
import { DEFAULT_DEADLINES } from "../run/deadlines.ts";
import { programsAmong, resolvePush } from "../run/push.ts";
import { loadSuite, suiteFragments } from "../run/suite.ts";
import { buildSelftests } from "../selftests/build.ts";
import { bisectStepRow } from "./bisect-step.ts";
import { historyRow } from "./history.ts";
import { rawBootOnce, rawColdBuild, TEST_COMMAND } from "./raw.ts";
import { snapshotRows } from "./snapshot.ts";
import { type BenchRow, benchTable, row, seconds, stats } from "./stats.ts";

/**
 * Each khil stage next to the same work done by the raw tools on the same tree, config, kernel and image,
 * one after the other on this machine.
 */
export async function runBench(arch: Arch, o: { quick: boolean; runs: number; runDir: string }) {
  const rows: BenchRow[] = [];
  const tree = await resolveTree({});
  const suite = loadSuite("bpf-timer");
  const fragments = suiteFragments(suite);
  const { vars, env } = kernelMakeEnv(arch);
  const k = (args: string[]) =>
    execa("node", [join(projectRoot, "bin/khil.js"), ...args], { reject: false, all: true });
  const buildTimeoutMs = DEFAULT_DEADLINES.build * 1000;
  const build = await buildKernel({ tree, arch, fragments, runDir: o.runDir, timeoutMs: buildTimeoutMs });
  const rawMake = () =>
    execa("make", ["-s", "-C", build.srcDir, `O=${build.buildDir}`, ...vars, "-j2", "all"], { env });

  log("bench: warm no-op build");
  const khilNoop: number[] = [];
  const rawNoop: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    khilNoop.push(await seconds(() => k(["build", "--arch", arch.name])));
    rawNoop.push(await seconds(rawMake));
  }
  rows.push(row("build: warm, nothing to do", khilNoop, rawNoop));

  log("bench: incremental build after touching kernel/bpf/helpers.c");
  const touch = () => execa("touch", [join(tree.path, "kernel/bpf/helpers.c")]);
  const khilIncr: number[] = [];
  const khilMake: number[] = [];
  const rawIncr: number[] = [];
  const khilOnce = async () => {
    await touch();
    khilIncr.push(await seconds(() => k(["build", "--arch", arch.name])));
    khilMake.push(lastMakeSeconds(build.buildDir));
  };
  const rawOnce = async () => {
    await touch();
    rawIncr.push(await seconds(rawMake));
  };
  // Taking turns at going first: neither side always finds the page cache as the other left it.
  for (let i = 0; i < o.runs; i++)
    for (const once of i % 2 ? [rawOnce, khilOnce] : [khilOnce, rawOnce]) await once();
  const incr = row("build: incremental (helpers.c)", khilIncr, rawIncr, { ratio: 1.1 });
  const makeMedian = stats(khilMake).median;
  incr.note = `khil's make ${makeMedian.toFixed(1)} s, khil around it ${(incr.khil.median - makeMedian).toFixed(1)} s (medians)`;
  rows.push(incr);
  rows.push(await copyBuild(arch, build, vars, env, o.runDir));
  if (!o.quick) rows.push(await coldBuild(arch, tree.path, vars, env, o.runDir));

  const st = await buildSelftests(
    arch,
    build,
    { progTests: suite.build?.progTests ?? ["timer*"], probes: suite.build?.probes ?? [] },
    o.runDir,
    buildTimeoutMs,
  );
  const files = resolvePush(st.dir, suite.push);
  const key = guestKey();
  const image = await buildImage(arch, key.publicKey, programsAmong(st.dir, files), [], suite.image);
  const accel = await chooseAccel(arch, build.bootImage);

  log("bench: boot to SSH");
  const khilBoot: number[] = [];
  const rawBoot: number[] = [];
  const khilMarker: number[] = [];
  let khilPush = 0;
  let khilRun = 0;
  for (let i = 0; i < o.runs; i++) {
    const g = await Guest.boot({
      arch,
      kernel: build.bootImage,
      initrd: image.path,
      accel: accel.accel,
      privateKey: key.privateKey,
      runDir: o.runDir,
    });
    khilBoot.push(g.bootSeconds);
    khilMarker.push(g.markerSeconds);
    if (i === 0) {
      khilPush = await seconds(() => g.ssh.push(st.dir, files, GUEST_DIR, 120_000));
      khilRun = await seconds(() => g.ssh.capture(`cd ${GUEST_DIR} && ${TEST_COMMAND}`, 600_000));
    }
    await g.stop();
    rawBoot.push(
      await rawBootOnce(
        arch,
        build.bootImage,
        image.path,
        accel.accel,
        key.path,
        i === 0 ? { dir: st.dir, files, rows, khilPush, khilRun } : undefined,
      ),
    );
  }
  const bootRow = row("boot to SSH", khilBoot, rawBoot, { seconds: arch.bootToSshGoalSeconds });
  const marker = stats(khilMarker).median;
  bootRow.note = `guest's init ready at ${marker.toFixed(2)} s, SSH session ${(bootRow.khil.median - marker).toFixed(2)} s later (medians)`;
  rows.splice(rows.length - 2, 0, bootRow);

  // The raw makes above left khil's build stamp older than the tree; a user's second run finds it current.
  await k(["build", "--arch", arch.name]);
  log("bench: whole warm boot-and-test");
  const before = Date.now();
  const bt = await k(["boot-and-test", "--arch", arch.name]);
  const whole = (Date.now() - before) / 1000;
  const runDir = /^results: (\S+)/m.exec(bt.stdout)?.[1];
  const results = runDir ? readRunDir(runDir) : undefined;
  const rawSum =
    (rows.find((r) => r.stage === "build: warm, nothing to do")?.raw.median ?? 0) +
    (bootRow.raw.median || 0) +
    (rows.find((r) => r.stage === "push")?.raw.median ?? 0) +
    (rows.find((r) => r.stage === "run the timer tests")?.raw.median ?? 0);
  const wholeRow = row("boot-and-test: warm, whole", [whole], [rawSum], { ratio: 1.15 });
  const t = results?.runs[0]?.timings ?? {};
  wholeRow.note = `khil's stages: ${Object.entries(t)
    .map(([n, s]) => `${n} ${Number(s).toFixed(1)} s`)
    .join(", ")}`;
  rows.push(wholeRow);
  const booting = {
    arch,
    kernel: build.bootImage,
    initrd: image.path,
    accel: accel.accel,
    privateKey: key.privateKey,
  };
  rows.push(...(await snapshotRows(booting, o, { coldBoot: bootRow.khil.median, oneRun: whole })));
  const warmRun = results?.runs[0];
  if (warmRun) rows.push(await historyRow(warmRun, o.runDir, o.runs));
  if (!o.quick) rows.push(await coldFirstRun(arch, rows, o.runDir));
  rows.push(
    await bisectStepRow(arch, tree.path, vars, env, o.runDir, {
      boot: bootRow.raw.median,
      tests: rows.find((r) => r.stage === "run the timer tests")?.raw.median ?? 0,
    }),
  );

  const bench = {
    machine: {
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      arch: arch.name,
      accel: accel.accel,
      accelReason: accel.reason,
    },
    khilPeakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    cliPeakRssMiB: results?.khilPeakRssMiB,
    guestMemoryMiB: 2048,
    rows,
    // bpf_timer's firing latency against user space's, as the warm boot-and-test's probe measured it.
    measures: results?.runs[0]?.measures ?? [],
  };
  writeFileSync(join(o.runDir, "bench.json"), `${JSON.stringify(bench, null, 2)}\n`);
  process.stdout.write(
    `${benchTable(rows)}\n${latencyTable(results)}khil peak RSS: bench process ${bench.khilPeakRssMiB} MiB, boot-and-test CLI ${bench.cliPeakRssMiB ?? "?"} MiB; guest memory ${bench.guestMemoryMiB} MiB\nbench.json: ${join(o.runDir, "bench.json")}\n`,
  );
  return bench;
}

/**
 * A newcomer's first run, host packages installed and nothing else: boot-and-test with an empty cache (no
 * tree unpacked, no ccache, no selftests, no guest packages). Its raw side is the raw steps of the rows
 * before it — unpacking the tree, the cold build, boot, push, the tests — without a selftests build: by
 * hand that is all of test_progs (hundreds of prog_tests), which khil never builds.
 */
async function coldFirstRun(arch: Arch, rows: readonly BenchRow[], runDir: string): Promise<BenchRow> {
  log("bench: cold first run (boot-and-test with an empty cache): long");
  const cache = join(runDir, "empty-cache");
  const khil = await seconds(() =>
    execa("node", [join(projectRoot, "bin/khil.js"), "boot-and-test", "--arch", arch.name], {
      env: { KHIL_CACHE: cache },
    }),
  );
  rmSync(cache, { recursive: true, force: true });
  const scratch = join(runDir, "untar");
  mkdirSync(scratch, { recursive: true });
  const untar = await seconds(async () => execa("tar", ["-xf", packagedTarball(), "-C", scratch]));
  rmSync(scratch, { recursive: true, force: true });
  const raw = (stage: string) => rows.find((r) => r.stage === stage)?.raw.median ?? 0;
  const rawSum = untar + raw("build: cold") + raw("boot to SSH") + raw("push") + raw("run the timer tests");
  const out = row("first run: empty cache", [khil], [rawSum], { seconds: 720 });
  out.note = `raw: untar ${untar.toFixed(0)} s + cold make + boot + push + tests, no selftests build`;
  return out;
}

function latencyTable(results: Results | undefined): string {
  const measured = measureRows(results?.runs ?? []);
  return measured.length ? `\n${textTable(MEASURE_HEAD, measured).join("\n")}\n\n` : "";
}

function lastMakeSeconds(buildDir: string): number {
  return (JSON.parse(readFileSync(join(buildDir, "khil-build.json"), "utf8")) as KernelBuild).makeSeconds;
}

/**
 * A tree at a new path (a user's checkout, a bisect repository, a series' worktree) built by khil, against
 * ccache's own floor: make into an empty build directory of the tree khil already built, every object in
 * ccache. The copy is hard links: what differs is only the path.
 */
async function copyBuild(
  arch: Arch,
  build: KernelBuild,
  vars: string[],
  env: NodeJS.ProcessEnv,
  runDir: string,
) {
  log("bench: a copy of the tree at another path, from ccache, khil then raw make");
  const copy = join(runDir, "tree-copy");
  await execa("cp", ["-al", build.tree, copy]);
  let stdout = "";
  const khil = await seconds(async () => {
    ({ stdout } = await execa("node", [
      join(projectRoot, "bin/khil.js"),
      ...["build", "--arch", arch.name, "--tree", copy, "--json"],
    ]));
  });
  const copied = JSON.parse(stdout) as KernelBuild;
  rmSync(copied.srcDir, { recursive: true, force: true });
  rmSync(copy, { recursive: true, force: true });
  // kbuild takes a build directory right inside the tree for relative paths: so is this one.
  const fresh = join(build.srcDir, "obj-bench");
  mkdirSync(fresh, { recursive: true });
  copyFileSync(build.config, join(fresh, ".config"));
  const raw = await seconds(() =>
    execa("make", ["-s", "-C", build.srcDir, `O=${fresh}`, ...vars, "-j2", "all"], { env }),
  );
  rmSync(fresh, { recursive: true, force: true });
  const out = row("build: tree copy, from ccache", [khil], [raw], { seconds: 90 });
  out.note = `khil's make ${copied.makeSeconds.toFixed(1)} s of it, ccache ${copied.ccache.hits} hits, ${copied.ccache.misses} misses`;
  return out;
}

/** Both from nothing: an empty build directory and no ccache (CCACHE_DISABLE), khil first, then make. */
async function coldBuild(arch: Arch, tree: string, vars: string[], env: NodeJS.ProcessEnv, runDir: string) {
  log("bench: cold build (empty build directory, no ccache), khil then raw make: long");
  const scratch = join(runDir, "cold");
  // The same tree for both (--tree): the cold row measures builds, not unpacking linux-source.
  const khil = await seconds(() =>
    execa("node", [join(projectRoot, "bin/khil.js"), "build", "--arch", arch.name, "--tree", tree], {
      env: { KHIL_CACHE: join(scratch, "khil-cache"), CCACHE_DISABLE: "1" },
    }),
  );
  const fragments = fragmentPaths(arch, treeVersion(tree), suiteFragments(loadSuite("bpf-timer")));
  const raw = await seconds(() => rawColdBuild(tree, join(scratch, "raw"), vars, env, fragments));
  rmSync(scratch, { recursive: true, force: true });
  return row("build: cold", [khil], [raw]);
}
