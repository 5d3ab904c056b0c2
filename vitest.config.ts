import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Test layers, one vitest project each:
 * - unit:    plain Node (policy compiler, diff, catalog snapshot against the real servers)
 * - bridge:  the container's bridge process with real stdio servers from npm
 * - workers: the Worker inside workerd with real D1, KV and Durable Objects
 * - infra:   the Pulumi program under mocks (process-global runtime: one fork per file)
 * - e2e:     the local stack as `npm start` runs it, driven by the real MCP SDK client and Chromium
 */
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node", testTimeout: 30_000 } },
      {
        test: {
          name: "bridge",
          include: ["test/bridge/**/*.test.ts"],
          environment: "node",
          pool: "forks",
          testTimeout: 30_000,
        },
      },
      {
        // Real processes on 127.0.0.1 (wrangler dev + bridge + stdio servers), one stack per file; files run
        // one at a time because a stack uses most of a 2-core machine. Each file owns a port range.
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          pool: "forks",
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "infra",
          include: ["test/infra/**/*.test.ts"],
          environment: "node",
          pool: "forks",
          testTimeout: 30_000,
        },
      },
      {
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.jsonc" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations("./migrations"),
                // A test-only secret: the configuration requires one, and no deployment ever sees this file.
                HATAGO_BRIDGE_SECRET: "test-only-bridge-secret-0123456789abcdef",
                // The fuzz test's seed and run count (test/workers/fuzz.test.ts); empty = its defaults.
                FUZZ_SEED: process.env.FUZZ_SEED ?? "",
                FUZZ_RUNS: process.env.FUZZ_RUNS ?? "",
              },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          setupFiles: ["./test/workers/setup.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
