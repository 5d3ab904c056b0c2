import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
  UnauthorizedError as ModernUnauthorized,
} from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CLIENT_CAPABILITIES } from "../../policies/client-capabilities.ts";
import { listServerTools } from "../../scripts/lib/server-tools.ts";
import { d1Query } from "./helpers/d1.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { DemoOAuthProvider, type DemoPerson } from "./helpers/oauth-flow.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

/**
 * Both MCP eras on the same /mcp at the same time (MCP 2026-07-28, versioning: a dual-era server): a real
 * modern client (@modelcontextprotocol/client 2.4, `versionNegotiation: auto`: probes with server/discover
 * and stays modern only on definitive modern evidence) and a real legacy client (@modelcontextprotocol/sdk
 * 1.32), each through the full OAuth flow (discovery → registration → consent → mock login → token), on
 * the local stack with the real bridge and the real `everything` server.
 *
 * Ports 18620–18622 (the stack takes base, base+1, base+2).
 */
const BASE = 18620;
let stack: TestStack;
const closers: (() => Promise<void>)[] = [];

interface ModernConnected {
  readonly client: ModernClient;
  readonly provider: DemoOAuthProvider;
}

/** The modern client, signed in with the same OAuth helper the legacy tests use. */
async function connectModern(person: DemoPerson, capabilities: Record<string, unknown> = {}): Promise<ModernConnected> {
  const provider = new DemoOAuthProvider(person);
  const url = new URL(`${stack.url}/mcp`);
  const make = () =>
    new ModernClient(
      { name: `e2e-modern-${person}`, version: "1.0.0" },
      { capabilities, versionNegotiation: { mode: "auto" } },
    );
  let client = make();
  let transport = new ModernTransport(url, { authProvider: provider });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof ModernUnauthorized) || !provider.code) throw error;
    // SDK 2.4 checks RFC 9207 `iss`; the helper keeps only the code, and our callback's `iss` is always the
    // issuer, this origin (asserted on the wire by test/workers/oauth/harness/flow.ts, clientRedirect).
    await transport.finishAuth(provider.code, stack.url);
    client = make();
    transport = new ModernTransport(url, { authProvider: provider });
    await client.connect(transport);
  }
  closers.push(() => client.close());
  return { client, provider };
}

async function connectLegacy(person: DemoPerson, capabilities: Record<string, unknown> = {}): Promise<Connected> {
  const c = await connectAs(stack.url, person, { clientOptions: { capabilities } });
  closers.push(() => c.client.close());
  return c;
}

async function modernCallError(client: ModernClient, name: string, args: Record<string, unknown> = {}) {
  try {
    const result = await client.callTool({ name, arguments: args });
    return { result };
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    return { code: e.code, message: String(e.message) };
  }
}

beforeAll(async () => {
  stack = await startTestStack(BASE);
});

afterAll(async () => {
  for (const close of closers) await close().catch(() => {});
  await stack?.dispose();
});

describe("a modern client (SDK 2.4) and a legacy client (SDK 1.32) on the same /mcp, at the same time", () => {
  it("the modern client stays modern (no initialize fallback) and needs no session", async () => {
    const modern = await connectModern("erin");
    expect(modern.client.getProtocolEra()).toBe("modern");
    expect(modern.client.getNegotiatedProtocolVersion()).toBe("2026-07-28");
    expect(modern.client.getServerVersion()).toMatchObject({ name: "hatago-auth" });
  });

  it("list and call, in both eras at once, with the same answers", async () => {
    const [modern, legacy] = await Promise.all([connectModern("erin"), connectLegacy("erin")]);
    const [modernTools, legacyTools] = await Promise.all([modern.client.listTools(), legacy.client.listTools()]);
    const names = (l: { tools: { name: string }[] }) => l.tools.map((t) => t.name).sort();
    expect(names(modernTools)).toEqual(names(legacyTools));
    expect(names(modernTools)).toEqual([
      "everything__echo",
      "everything__get-sum",
      "everything__simulate-research-query",
    ]);
    const [m, l] = await Promise.all([
      modern.client.callTool({ name: "everything__echo", arguments: { message: "modern" } }),
      legacy.client.callTool({ name: "everything__echo", arguments: { message: "legacy" } }),
    ]);
    expect(JSON.stringify(m.content)).toContain("Echo: modern");
    expect(JSON.stringify(l.content)).toContain("Echo: legacy");
    const sum = await modern.client.callTool({ name: "everything__get-sum", arguments: { a: 2, b: 3 } });
    expect(JSON.stringify(sum.content)).toContain("5");
  });

  it("a modern tools/call is one decision and one audit row, with no session id", async () => {
    const modern = await connectModern("erin");
    const count = async () =>
      Number(
        (await d1Query(stack.stateDir, "SELECT COUNT(*) AS n FROM audit_log WHERE principal = 'mock:erin'"))[0]?.n,
      );
    const before = await count();
    await modern.client.callTool({ name: "everything__echo", arguments: { message: "row" } });
    await new Promise((r) => setTimeout(r, 300));
    const rows = await d1Query(
      stack.stateDir,
      "SELECT session_id, outcome FROM audit_log WHERE principal = 'mock:erin' ORDER BY id DESC LIMIT 1",
    );
    expect((await count()) - before).toBe(1);
    expect(rows[0]).toMatchObject({ session_id: null, outcome: "ok" });
  });
});

describe("the permission matrix in both eras: what one era may not do, the other may not either", () => {
  for (const person of ["alice", "bob", "carol", "dave", "erin", "frank"] as const) {
    it(`${person}: the same tool list in both eras, and the same answer to everything__get-env (admins only)`, async () => {
      const [modern, legacy] = await Promise.all([connectModern(person), connectLegacy(person)]);
      const names = (l: { tools: { name: string }[] }) => l.tools.map((t) => t.name).sort();
      const listed = names(await legacy.client.listTools());
      expect(names(await modern.client.listTools())).toEqual(listed);
      // get-env is admins only: a denial must read the same in both eras.
      const legacyDenied = await callError(legacy.client, "everything__get-env");
      const modernDenied = await modernCallError(modern.client, "everything__get-env");
      if (legacyDenied === null) expect("result" in modernDenied).toBe(true);
      else expect(modernDenied.message).toContain("Tool everything__get-env not found");
    });
  }
});

describe("a client sees what it can use, in both eras (modern: the request's _meta client capabilities)", () => {
  const PROBES: Record<string, Record<string, unknown>> = {
    none: {},
    sampling: { sampling: {} },
    "elicitation (url)": { elicitation: { url: {} } },
    roots: { roots: {} },
    "all of them": ALL_CLIENT_CAPABILITIES,
  };
  for (const [label, capabilities] of Object.entries(PROBES)) {
    it(`bob declaring ${label}: the same list in both eras, what the server lists to such a client less what the policy refuses`, async () => {
      const [modern, legacy] = await Promise.all([
        connectModern("bob", capabilities),
        connectLegacy("bob", capabilities),
      ]);
      const everything = (l: { tools: { name: string }[] }) =>
        l.tools
          .map((t) => t.name)
          .filter((n) => n.startsWith("everything__"))
          .sort();
      const direct = await listServerTools("everything", capabilities);
      // bob may use every everything tool but get-env and gzip-file-as-resource (policies/environments/dev.ts).
      const expected = Object.keys(direct.tools)
        .filter((t) => t !== "get-env" && t !== "gzip-file-as-resource")
        .map((t) => `everything__${t}`)
        .sort();
      expect(everything(await modern.client.listTools())).toEqual(expected);
      expect(everything(await legacy.client.listTools())).toEqual(expected);
      if (!("sampling" in capabilities)) {
        const refused = await modernCallError(modern.client, "everything__trigger-sampling-request", { prompt: "x" });
        expect(refused.message).toContain("Tool everything__trigger-sampling-request not found");
      }
    });
  }

  it("a modern call of a tool the request's capabilities cannot use is audited as a denial", async () => {
    const modern = await connectModern("bob");
    await modernCallError(modern.client, "everything__get-roots-list", {});
    await new Promise((r) => setTimeout(r, 300));
    const rows = await d1Query(
      stack.stateDir,
      "SELECT tool, decision, reason, session_id FROM audit_log WHERE principal = 'mock:bob' ORDER BY id DESC LIMIT 1",
    );
    expect(rows[0]).toMatchObject({
      tool: "get-roots-list",
      decision: "deny",
      reason: "client_capability_missing",
      session_id: null,
    });
  });
});

describe("modern resources, prompts and completion: the same answers, decision and audit as the legacy path", () => {
  it("carol (a server-wide read): lists, a read, a prompt and a completion answer the same in both eras", async () => {
    const [modern, legacy] = await Promise.all([connectModern("carol"), connectLegacy("carol")]);
    const uris = (l: { resources: { uri: string }[] }) => l.resources.map((r) => r.uri).sort();
    const modernResources = await modern.client.listResources();
    expect(modernResources.resources.length).toBeGreaterThan(0);
    expect(uris(modernResources)).toEqual(uris(await legacy.client.listResources()));
    const templates = (l: { resourceTemplates: { uriTemplate: string }[] }) =>
      l.resourceTemplates.map((t) => t.uriTemplate).sort();
    expect(templates(await modern.client.listResourceTemplates())).toEqual(
      templates(await legacy.client.listResourceTemplates()),
    );

    const uri = modernResources.resources.find((r) => r.uri.startsWith("hatago:everything:"))?.uri ?? "";
    const [m, l] = await Promise.all([modern.client.readResource({ uri }), legacy.client.readResource({ uri })]);
    expect(m.contents[0]?.uri).toBe(uri);
    expect(m.contents).toEqual(l.contents);

    const names = (l: { prompts: { name: string }[] }) => l.prompts.map((p) => p.name).sort();
    const modernPrompts = await modern.client.listPrompts();
    expect(names(modernPrompts)).toContain("everything__simple-prompt");
    expect(names(modernPrompts)).toEqual(names(await legacy.client.listPrompts()));
    const [mp, lp] = await Promise.all([
      modern.client.getPrompt({ name: "everything__simple-prompt" }),
      legacy.client.getPrompt({ name: "everything__simple-prompt" }),
    ]);
    expect(mp.messages).toEqual(lp.messages);

    const completion = {
      ref: { type: "ref/prompt" as const, name: "everything__completable-prompt" },
      argument: { name: "department", value: "E" },
    };
    const [mc, lc] = await Promise.all([modern.client.complete(completion), legacy.client.complete(completion)]);
    expect(mc.completion.values).toEqual(["Engineering"]);
    expect(mc.completion.values).toEqual(lc.completion.values);
  });

  it("a modern read is one decision and one audit row, with no session id; a refused one reads as missing", async () => {
    const carol = await connectModern("carol");
    const uri = (await carol.client.listResources()).resources[0]?.uri ?? "";
    await carol.client.readResource({ uri });
    await new Promise((r) => setTimeout(r, 300));
    const rows = await d1Query(
      stack.stateDir,
      "SELECT action, decision, outcome, session_id FROM audit_log WHERE principal = 'mock:carol' ORDER BY id DESC LIMIT 1",
    );
    expect(rows[0]).toMatchObject({ action: "resources/read", decision: "allow", outcome: "ok", session_id: null });

    const erin = await connectModern("erin");
    expect((await erin.client.listResources()).resources).toEqual([]);
    await expect(erin.client.readResource({ uri })).rejects.toThrow(/not found/);
    await expect(erin.client.getPrompt({ name: "everything__simple-prompt" })).rejects.toThrow(/not found/);
  });
});
