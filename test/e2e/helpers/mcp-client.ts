import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
  UnauthorizedError as ModernUnauthorized,
} from "@modelcontextprotocol/client";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client, type ClientOptions } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { DemoOAuthProvider, type DemoPerson } from "./oauth-flow.ts";

export interface Connected {
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport | SSEClientTransport;
  readonly provider: DemoOAuthProvider;
  /** The current access token. */
  token(): string;
}

/**
 * The real MCP SDK client, signed in through the real OAuth flow (discovery → registration → our consent
 * → mock login → code → token), connected over Streamable HTTP or the legacy SSE transport.
 */
export async function connectAs(
  baseUrl: string,
  person: DemoPerson,
  options: {
    transport?: "streamable" | "sse";
    clientOptions?: ClientOptions;
    provider?: DemoOAuthProvider;
    setup?: (c: Client) => void;
  } = {},
): Promise<Connected> {
  const provider = options.provider ?? new DemoOAuthProvider(person);
  const make = () =>
    options.transport === "sse"
      ? new SSEClientTransport(new URL(`${baseUrl}/sse`), { authProvider: provider })
      : new StreamableHTTPClientTransport(new URL(`${baseUrl}/mcp`), { authProvider: provider });
  const newClient = () => {
    const c = new Client({ name: `e2e-${person}`, version: "1.0.0" }, options.clientOptions);
    options.setup?.(c);
    return c;
  };
  let client = newClient();
  let transport = make();
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.code) throw error;
    await transport.finishAuth(provider.code);
    client = newClient();
    transport = make();
    await client.connect(transport);
  }
  return {
    client,
    transport,
    provider,
    token() {
      const token = provider.tokens()?.access_token;
      if (!token) throw new Error("no access token");
      return token;
    },
  };
}

/**
 * The modern client (@modelcontextprotocol/client 2.4, MCP 2026-07-28, `versionNegotiation: auto`), signed
 * in through the same OAuth flow as `connectAs`.
 */
export async function connectModernAs(
  baseUrl: string,
  person: DemoPerson,
  options: { name?: string; capabilities?: Record<string, unknown>; setup?: (client: ModernClient) => void } = {},
): Promise<{ readonly client: ModernClient; readonly provider: DemoOAuthProvider }> {
  const provider = new DemoOAuthProvider(person);
  const url = new URL(`${baseUrl}/mcp`);
  const make = () => {
    const client = new ModernClient(
      { name: options.name ?? `e2e-modern-${person}`, version: "1.0.0" },
      { capabilities: options.capabilities ?? {}, versionNegotiation: { mode: "auto" } },
    );
    options.setup?.(client);
    return client;
  };
  let client = make();
  let transport = new ModernTransport(url, { authProvider: provider });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof ModernUnauthorized) || !provider.code) throw error;
    // SDK 2.4 checks RFC 9207 `iss`; the helper keeps only the code, and our callback's `iss` is always the
    // issuer, this origin (asserted on the wire by test/workers/oauth/harness/flow.ts, clientRedirect).
    await transport.finishAuth(provider.code, baseUrl);
    client = make();
    transport = new ModernTransport(url, { authProvider: provider });
    await client.connect(transport);
  }
  return { client, provider };
}

/** The error a call ends with, or `null` when it succeeds. */
export async function callError(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<{ code: number; message: string } | null> {
  try {
    await client.callTool({ name, arguments: args });
    return null;
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    return { code: typeof e.code === "number" ? e.code : Number.NaN, message: String(e.message) };
  }
}
