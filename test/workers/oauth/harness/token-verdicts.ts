import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import type { Env } from "../../../../worker/env.ts";
import { createWorker, parseConfig } from "../../../../worker/index.ts";
import { meterKv, meterSnapshot } from "../../metering/meter.ts";
import { Browser } from "./browser.ts";
import { mockUpstream, signIn, tokens } from "./flow.ts";
import { OAuthTestClient, ORIGIN, type Send } from "./oauth-client.ts";
import { testSettings } from "./workers.ts";

/**
 * What the token verdict tests share (token-verdicts.test.ts, token-verdicts.attacks.test.ts): the product
 * Worker (createWorker) with its KV counted, so "the library was asked" is a KV read, a person signed in on
 * it, and a modern `tools/list` to send with any Authorization header(s).
 */

/** The library's token lookups so far (meter.ts; reset with meterReset). */
export const kvReads = () => meterSnapshot()["kv.read"]?.count ?? 0;

export interface VerdictHarness {
  readonly send: Send;
  readonly client: OAuthTestClient;
  readonly token: string;
  readonly refreshToken: string;
}

/** A Worker of its own (so its own verdicts), its KV counted. */
export function meteredWorker(): Send {
  const parsed = parseConfig(testSettings());
  if (!parsed.ok) throw new Error("test configuration invalid");
  const worker = createWorker(parsed.config);
  const metered: Env = { ...(env as unknown as Env), OAUTH_KV: meterKv(env.OAUTH_KV) };
  return async (request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request, metered, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

/** meteredWorker(), and `person` signed in on it through the OAuth flow. */
export async function verdictHarness(person = "erin"): Promise<VerdictHarness> {
  const send = meteredWorker();
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
  const issued = await tokens(await client.exchange(code, pkce.verifier));
  return { send, client, token: issued.access_token, refreshToken: issued.refresh_token ?? "" };
}

const MODERN = "2026-07-28";

/** A modern `tools/list` (stateless: no session object, no container); each authorization value is one header. */
export function toolsList(authorization: string | string[], options: { url?: string; origin?: string } = {}): Request {
  const headers = new Headers({
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": MODERN,
    "mcp-method": "tools/list",
  });
  for (const value of Array.isArray(authorization) ? authorization : [authorization]) {
    headers.append("authorization", value);
  }
  if (options.origin) headers.set("origin", options.origin);
  return new Request(options.url ?? `${ORIGIN}/mcp`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/list",
      params: {
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN,
          "io.modelcontextprotocol/clientInfo": { name: "verdicts", version: "1.0.0" },
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    }),
  });
}

/** An answer's headers, sorted, without `date`: what two answers to the same request must share. */
export const headerSet = (response: Response) =>
  [...response.headers].filter(([name]) => name !== "date").sort(([a], [b]) => a.localeCompare(b));
