import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/**
 * Test layers, one vitest project each:
 * - unit:    plain Node (policy compiler, diff, catalog snapshot against the real servers)
 * - bridge:  the container's bridge process with real stdio servers from npm
 * - workers: the Worker inside workerd with real D1, KV and Durable Objects
 * - infra:   the Pulumi program under mocks (process-global runtime: one fork per file)
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
