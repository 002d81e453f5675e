import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The slow tier (6.1 trees, --debug kernels, bisect over 16 commits) runs with `npm run test:slow`.
    exclude: process.argv.some((a) => a.startsWith("test/slow")) ? [] : ["test/slow/**"],
    // Integration tests build kernels and boot guests: they share two cores, so files run one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60 * 60_000,
    // A CI log shows each test as it ends and, live, the progress lines of the khil runs the tests start
    // (test/helpers.ts forwards them): a cold run spends half an hour building kernels in its first file.
    reporters: ["verbose"],
    disableConsoleIntercept: true,
  },
});
