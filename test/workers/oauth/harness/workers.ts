import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describeProblems } from "../../../../worker/config.ts";
import { createWorker, parseConfig } from "../../../../worker/index.ts";
import { ORIGIN, type Send } from "./oauth-client.ts";

/** The Worker as deployed here: the default export, configured by wrangler.jsonc's vars (mock login). */
export const viaDefaultExport: Send = (request) => exports.default.fetch(request);

/**
 * The settings the test environment gives the Worker (wrangler.jsonc vars, test-only secrets from
 * vitest.config.ts such as HATAGO_BRIDGE_SECRET), so a setting the Worker comes to require reaches every
 * test configuration too.
 */
export function testSettings(): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith("HATAGO_") && typeof value === "string") settings[name] = value;
  }
  return { ...settings, HATAGO_ENVIRONMENT: "dev", HATAGO_PUBLIC_URL: ORIGIN };
}

/**
 * A Worker built by the same factory the default export uses, from other settings (another login
 * provider). Settings go through parseConfig, so an invalid combination fails here as it would at start-up.
 */
export function workerWith(settings: Record<string, string>): Send {
  const parsed = parseConfig({ ...testSettings(), ...settings });
  if (!parsed.ok) throw new Error(`test configuration invalid: ${describeProblems(parsed.problems)}`);
  const worker = createWorker(parsed.config);
  return async (request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, env, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

/** KV keys the OAuth library holds, by prefix (client:, grant:, token:, transaction:). */
export async function kvKeys(prefix: string): Promise<string[]> {
  const { keys } = await env.OAUTH_KV.list({ prefix });
  return keys.map((k) => k.name);
}
