import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["test/globalSetup.ts"],
    environment: "node",
    // Sandboxes bind real loopback ports; files run in parallel, tests in a file in order.
    pool: "forks",
    testTimeout: 20_000,
    // Every answer any test provokes is checked against its schema (src/server/responseCheck.ts).
    env: { AUTOFLOW_CHECK_RESPONSES: "1" },
    hookTimeout: 20_000,
  },
});
