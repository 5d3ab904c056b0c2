import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { testSettings, workerWith } from "../oauth/harness/workers.ts";
import { adminBrowser, CONSOLE, pageOf, readable, seedDevPolicy } from "./harness.ts";

beforeEach(seedDevPolicy);

/** A Worker whose bridge is a local address nothing listens on (no container can run in this runtime). */
const noBridge = () => workerWith({ ...testSettings(), HATAGO_INSECURE_DEV_BRIDGE_URL: "http://127.0.0.1:9" });

describe("health view: /health's report, KV, the deployed policy, the login provider", () => {
  it("shows each part, the seeded policy's hash, names the provider without secrets", async () => {
    const page = await pageOf(await adminBrowser("alice", noBridge()), `${CONSOLE}/health`);
    expect(page.status).toBe(200);
    const text = readable(page.text);
    expect(text).toContain("database up D1 answers");
    expect(text).toContain("kv up KV answers");
    expect(text).toMatch(/policy up "dev" [0-9a-f]{12} is seeded/);
    expect(text).toContain("mock (development only; refused in production)");
    // No bridge can run in this test runtime: the page says so rather than inventing a state.
    expect(text).toContain("bridge down the bridge process is unreachable");
    expect(text).toContain("The bridge does not answer.");
    expect(page.text).not.toContain(env.HATAGO_BRIDGE_SECRET);
  });

  it("a policy seeded for another environment is flagged (the Worker does not compile policies/ itself)", async () => {
    await env.DB.prepare("UPDATE policy_meta SET value = 'prod' WHERE key = 'environment'").run();
    const text = readable((await pageOf(await adminBrowser("alice", noBridge()), `${CONSOLE}/health`)).text);
    expect(text).toContain('policy down the seeded policy is "prod", this Worker is "dev"');
  });
});
