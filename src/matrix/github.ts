import { stringify } from "yaml";
import type { Cell } from "./matrix.ts";

/** A GitHub Actions expression, `${{ ... }}`, built so that no source string looks like a broken template. */
const gh = (expr: string) => `$\{{ ${expr} }}`;

/**
 * Node for khil (commander needs 20; Debian bookworm's nodejs is 18), then what bootstrap.sh needs to start:
 * it installs every other Debian package itself.
 */
const SETUP = [
  { uses: "actions/checkout@v4" },
  { uses: "actions/setup-node@v4", with: { "node-version": "20" } },
  {
    name: "Host packages to start from",
    run: "apt-get update -q && apt-get install -y -q --no-install-recommends ca-certificates git",
  },
];

/**
 * A GitHub Actions workflow for a matrix: one job per cell (strategy.matrix) that installs what it needs,
 * runs khil for its cell and uploads the cell's run directory; then one job that merges every cell's
 * results and writes the Markdown table to the job summary. Debian 12 is the container: khil's kernel
 * trees and toolchains are Debian packages. The container is privileged so that it sees /dev/kvm where the
 * runner has it: khil's KVM probe then decides, and TCG is used elsewhere. ccache and the unpacked trees
 * are kept between runs, and so is the results database: each cell is judged against it and adds its run,
 * the report job merges the cells' copies into one and keeps that for the next workflow run.
 */
export function githubWorkflow(cells: Cell[], matrixFile: string): string {
  const cell = gh("matrix.cell");
  const key = (what: string) => gh(`steps.keys.outputs.${what}`);
  const trees = {
    name: "Keep the unpacked kernel trees between runs",
    uses: "actions/cache@v4",
    with: { path: "~/.cache/khil/trees", key: key("trees") },
  };
  // A cache entry is never overwritten: each run saves its own, and the next one starts from the newest.
  const ccache = {
    name: "Keep ccache between runs",
    uses: "actions/cache@v4",
    with: {
      path: "~/.cache/khil/ccache",
      key: `${key("ccache")}-${gh("github.run_id")}`,
      "restore-keys": `${key("ccache")}-\nkhil-ccache-${cell}-`,
    },
  };
  // The newest database any earlier workflow run kept; each keeps its own (a cache entry is never replaced).
  const history = (step: "restore" | "save") => ({
    name:
      step === "restore" ? "The results database kept by earlier runs" : "Keep the merged results database",
    ...(step === "save" ? { if: "always()" } : {}),
    uses: `actions/cache/${step}@v4`,
    with: {
      path: "history",
      key: `khil-history-${gh("github.run_id")}`,
      ...(step === "restore" ? { "restore-keys": "khil-history-" } : {}),
    },
  });
  const workflow = {
    name: "khil matrix",
    on: { push: null, pull_request: null, workflow_dispatch: null },
    jobs: {
      cell: {
        name: cell,
        "runs-on": "ubuntu-latest",
        container: { image: "debian:bookworm", options: "--privileged" },
        "timeout-minutes": 120,
        strategy: { "fail-fast": false, matrix: { cell: cells.map((c) => c.name) } },
        steps: [
          ...SETUP,
          { name: "khil set-up (Debian packages, node modules)", run: "bash harness/bootstrap.sh" },
          {
            name: "Name the caches (kernel trees by package version, ccache by cell and config)",
            id: "keys",
            run: [
              `echo "trees=khil-trees-$(dpkg-query -W -f='\${Package}=\${Version} ' 'linux-source-*' | sha256sum | cut -c1-16)" >> "$GITHUB_OUTPUT"`,
              `echo "ccache=khil-ccache-${cell}-$(cat kernel-config/*.config harness/arch/*.yaml | sha256sum | cut -c1-16)" >> "$GITHUB_OUTPUT"`,
            ].join("\n"),
          },
          trees,
          ccache,
          history("restore"),
          {
            name: "Build, boot and test the cell",
            run: `node bin/khil.js matrix --file ${matrixFile} --cell "${cell}" --out "runs/${cell}" --history history/history.sqlite`,
          },
          {
            name: "The cell's copy of the results database, for the report job",
            if: "always()",
            run: `mkdir -p "runs/${cell}" && cp history/history.sqlite "runs/${cell}/history.sqlite" || true`,
          },
          {
            name: "Keep the cell's run directory",
            if: "always()",
            uses: "actions/upload-artifact@v4",
            with: { name: `khil-${cell}`, path: `runs/${cell}` },
          },
        ],
      },
      report: {
        needs: "cell",
        if: "always()",
        "runs-on": "ubuntu-latest",
        container: { image: "debian:bookworm" },
        steps: [
          ...SETUP,
          { run: "npm ci --no-audit --no-fund" },
          { uses: "actions/download-artifact@v4", with: { pattern: "khil-*", path: "cells" } },
          history("restore"),
          {
            // The job summary lists new regressions and known flakes apart, as the cells' history judged them.
            name: "Merge the cells into one report, and their databases into one",
            run: [
              "mkdir -p history",
              'node bin/khil.js report merge cells/* $(ls cells/*/history.sqlite history/history.sqlite 2>/dev/null) --out report --history history/history.sqlite --markdown >> "$GITHUB_STEP_SUMMARY"',
              // report.html opens from the artifact with no network: the summary says where it is.
              'echo "report.html (the cells, splats, latency plots): in the khil-report artifact of $GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID" >> "$GITHUB_STEP_SUMMARY"',
            ].join("\n"),
          },
          history("save"),
          {
            if: "always()",
            uses: "actions/upload-artifact@v4",
            with: { name: "khil-report", path: "report" },
          },
        ],
      },
    },
  };
  return `# Generated by \`npx khil ci github --file ${matrixFile}\`: edit the matrix, not this file.\n${stringify(workflow, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
