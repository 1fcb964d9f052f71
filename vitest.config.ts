import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests that start HTTPS servers and child processes need more than the default 5 s on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: more workers only add contention.
    maxWorkers: 2
  }
})
