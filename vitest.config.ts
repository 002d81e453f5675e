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
    reporters: ["default"],
  },
});
