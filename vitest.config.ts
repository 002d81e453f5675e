import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests build kernels and boot guests: they share two cores, so files run one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60 * 60_000,
    reporters: ["default"],
  },
});
