import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import { SERVER_IDS } from "../../policies/catalog.ts";
import { authorize, effectiveGrants } from "../../policies/decide.ts";
import { compilePolicy, POLICIES } from "../../policies/index.ts";
import { database } from "../../worker/db/database.ts";
import { loadPrincipalGrants } from "../../worker/db/grants.repository.ts";
import { shipAuditRows } from "./audit/ledgers.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { approve, mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN, pkce } from "./oauth/harness/oauth-client.ts";
import { kvKeys, viaDefaultExport } from "./oauth/harness/workers.ts";

/**
 * A standing defence: generated and mutated input against the public surface of the Worker in workerd
 * (real D1, KV and Durable Objects), checked against the product's rules rather than against examples.
 *
 * Seeded and bounded: the default seed makes CI deterministic; FUZZ_SEED=<n> (a binding set from the
 * environment in vitest.config.ts) explores others. fast-check prints the seed and the shrunk case of a
 * failure, and `FUZZ_SEED=<seed>` replays it.
 */
const SEED = Number(env.FUZZ_SEED || 20_261_129);
const RUNS = Number(env.FUZZ_RUNS || 250);

const send = viaDefaultExport;
const AUDITED_METHODS = ["tools/call", "resources/read", "prompts/get"] as const;
const OK_5XX = new Set([503]);

interface Person {
  readonly principal: string;
  readonly access: string;
  readonly refresh: string;
  readonly client: OAuthTestClient;
  /** A session whose calls go straight to the container (`d-…`), and one through the session object. */
  readonly direct: string;
  readonly plain: string;
}

async function signInAs(person: string): Promise<Person> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce: p } = await signIn(new Browser(send), client, mockUpstream(person));
  const t = await tokens(await client.exchange(code, p.verifier));
  const open = async (capabilities: Record<string, unknown>) => {
    const init = await post(t.access_token, undefined, {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities, clientInfo: { name: "fuzz", version: "1" } },
    });
    expect(init.status).toBe(200);
    await init.text();
    const session = init.headers.get("mcp-session-id") ?? "";
    await (await post(t.access_token, session, { jsonrpc: "2.0", method: "notifications/initialized" })).text();
    return session;
  };
  return {
    principal: `mock:${person}`,
    access: t.access_token,
    refresh: t.refresh_token ?? "",
    client,
    direct: await open({}),
    plain: await open({ sampling: {} }),
  };
}

function headers(token: string, session: string | undefined): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-11-25",
    ...(session === undefined ? {} : { "mcp-session-id": session }),
  };
}

function post(token: string, session: string | undefined, body: unknown): Promise<Response> {
  return send(
    new Request(`${ORIGIN}/mcp`, { method: "POST", headers: headers(token, session), body: JSON.stringify(body) }),
  );
}

/**
 * Deep nesting stands in the generated value as a marker and is spelled out only in the body's text:
 * fast-check prints (and shrinks) values recursively, so a 6,000-deep value would overflow its reporter.
 */
const DEEP_MARK = "\u0000deep:";
function deepMarker(depth: number, asArray: boolean): string {
  return `${DEEP_MARK}${depth}:${asArray ? "a" : "o"}`;
}

/** The body's JSON text, with each deep marker replaced by that much nesting (built iteratively). */
function bodyText(body: unknown): string {
  return JSON.stringify(body).replace(/"\\u0000deep:(\d+):([ao])"/g, (_m, depth: string, kind: string) => {
    const n = Number(depth);
    return kind === "a" ? `${"[".repeat(n)}1${"]".repeat(n)}` : `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
  });
}

const toolNames = fc.oneof(
  fc.constantFrom(
    ...SERVER_IDS.flatMap((s) => Object.keys(catalogSnapshot[s].tools).map((t) => `${s}__${t}`)),
    "execute_stdio",
  ),
  fc.constantFrom("memory__", "__read_graph", "MEMORY__read_graph", "memory__read_graph\u0000", "memory___read_graph"),
  fc.string({ maxLength: 40 }),
);
const deep = fc
  .tuple(fc.integer({ min: 50, max: 6_000 }), fc.boolean())
  .map(([depth, asArray]) => deepMarker(depth, asArray));
const argumentValues = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
  fc.jsonValue({ maxDepth: 4 }),
  fc.constant("notanobject"),
  deep,
  fc.constant({ server: "memory", message: { jsonrpc: "2.0", id: 1, method: "tools/list", command: "sh" } }),
  fc.constant({ server: "nope", message: {} }),
);
const meta = fc.option(
  fc.oneof(fc.record({ progressToken: fc.oneof(fc.string(), fc.integer()) }), fc.jsonValue({ maxDepth: 2 }), deep),
  { nil: undefined },
);

/** A JSON-RPC request of an audited method with a well-formed envelope: every one must be one audit row. */
const decidedRequest = fc
  .record({
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 12 })),
    method: fc.constantFrom(...AUDITED_METHODS),
    name: toolNames,
    args: argumentValues,
    meta,
    uri: fc.oneof(fc.constant("hatago:memory:x"), fc.string({ maxLength: 30 })),
  })
  .map(({ id, method, name, args, meta: m, uri }) => {
    const params: Record<string, unknown> =
      method === "resources/read" ? { uri } : { name, arguments: method === "prompts/get" ? args : args };
    if (m !== undefined) params._meta = m;
    return { jsonrpc: "2.0", id, method, params };
  });

/** Anything else a client can send: not decisions (or malformed ones), never a 5xx. */
const otherBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ jsonrpc: fc.constant("2.0"), id: fc.integer(), method: fc.string({ maxLength: 20 }) }),
  fc.record({
    jsonrpc: fc.constantFrom("2.0", "1.0", 2),
    id: fc.oneof(fc.integer(), fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
    method: fc.constantFrom(...AUDITED_METHODS, "tools/list", "initialize", "ping"),
    params: fc.oneof(fc.jsonValue({ maxDepth: 3 }), deep),
  }),
  fc.array(decidedRequest, { maxLength: 4 }),
  deep,
);

const headerMutation = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  fc.constantFrom<[string, string | null]>(
    ["accept", "application/json"],
    ["accept", "text/html"],
    ["content-type", "text/plain"],
    ["mcp-protocol-version", "1999-01-01"],
    ["mcp-protocol-version", "2025-03-26"],
    ["origin", "https://evil.example"],
    ["origin", ORIGIN],
    ["mcp-session-id", "d-00000000-0000-4000-8000-000000000000"],
    ["mcp-session-id", "bad session id"],
    ["mcp-session-id", "x".repeat(200)],
    ["content-length", "99999999"],
    ["authorization", "Bearer mock%3Aalice:nope:nope"],
  ),
);

async function auditCount(): Promise<number> {
  await shipAuditRows();
  return (await env.DB.prepare("SELECT count(*) AS n FROM audit_log").first<number>("n")) ?? 0;
}

async function storedState(): Promise<string> {
  const tables = ["blocks", "revocations", "mcp_sessions", "bindings", "role_tools", "role_servers", "policy_meta"];
  const parts: unknown[] = [];
  for (const t of tables) parts.push((await env.DB.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`).all()).results);
  parts.push((await kvKeys("grant:")).sort(), (await kvKeys("client:")).length);
  return JSON.stringify(parts);
}

describe("fuzz: the MCP endpoint under generated and mutated messages and headers", () => {
  it("never a 5xx but 503, one audit row per decided request, no allow the policy denies, nothing stored changed", async () => {
    await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
    const people = [await signInAs("dave"), await signInAs("bob")];
    const grantsOf = new Map<string, ReturnType<typeof effectiveGrants>>();
    for (const p of people) {
      grantsOf.set(p.principal, effectiveGrants((await loadPrincipalGrants(database(env.DB), [p.principal])).rows));
    }
    const before = await storedState();
    let lastRow = (await env.DB.prepare("SELECT max(id) AS id FROM audit_log").first<number>("id")) ?? 0;

    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: people.length - 1 }),
        fc.constantFrom("direct", "plain"),
        fc.oneof(
          { weight: 3, arbitrary: decidedRequest.map((body) => ({ decided: true, body })) },
          { weight: 2, arbitrary: otherBody.map((body) => ({ decided: false, body: body as unknown })) },
        ),
        headerMutation,
        async (who, kind, { decided, body }, mutation) => {
          const person = people[who] as Person;
          const h = headers(person.access, kind === "direct" ? person.direct : person.plain);
          if (mutation) {
            const [name, value] = mutation;
            if (value === null) delete h[name];
            else h[name] = value;
          }
          const rowsBefore = await auditCount();
          const response = await send(
            new Request(`${ORIGIN}/mcp`, { method: "POST", headers: h, body: bodyText(body) }),
          );
          const text = await response.text();
          expect(response.status >= 500 && !OK_5XX.has(response.status), `status ${response.status}: ${text}`).toBe(
            false,
          );
          expect(text).not.toMatch(/Maximum call stack|RangeError|at [\w$.]+ \(/);
          const written = (await auditCount()) - rowsBefore;
          // A well-formed request of an audited method, sent as a client would: exactly one row. Anything
          // else: at most one row per audited-method message it holds (none when refused before a decision).
          if (decided && mutation === null) expect(written, `rows for ${text}`).toBe(1);
          const messages = Array.isArray(body) ? body : [body];
          const audited = messages.filter(
            (m) =>
              typeof m === "object" &&
              m !== null &&
              AUDITED_METHODS.includes((m as { method?: never }).method ?? ("" as never)),
          ).length;
          expect(written).toBeLessThanOrEqual(audited);
          // No allow the policy denies: every allow row is re-decided here with the real decision function.
          const { results } = await env.DB.prepare(
            "SELECT id, principal, action, server, tool FROM audit_log WHERE id > ? AND decision = 'allow'",
          )
            .bind(lastRow)
            .all<{ id: number; principal: string; action: string; server: string; tool: string }>();
          for (const row of results) {
            const grants = grantsOf.get(row.principal) ?? effectiveGrants([]);
            const target =
              row.action === "execute_stdio"
                ? ({ kind: "execute", server: row.server } as const)
                : row.action === "tools/call"
                  ? ({ kind: "tool", server: row.server, tool: row.tool } as const)
                  : ({ kind: "server-content", server: row.server } as const);
            expect(authorize(grants, target as Parameters<typeof authorize>[1]).allow, JSON.stringify(row)).toBe(true);
          }
          lastRow = (await env.DB.prepare("SELECT max(id) AS id FROM audit_log").first<number>("id")) ?? lastRow;
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    expect(await storedState(), "a refused request changed nothing stored").toBe(before);
  });
});

describe("fuzz: the OAuth endpoints under generated parameters", () => {
  it("never a 5xx, and nobody's grant is revoked or changed by someone else's malformed request", async () => {
    const bob = await signInAs("bob");
    const grantsBefore = (await kvKeys("grant:")).sort();
    const [userId, grantId, secret] = bob.refresh.split(":");
    const tokenish = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.string({ maxLength: 20 }).map((s) => `${userId}:${grantId}:${s}`),
      fc.constant(`${userId}:${grantId}:${(secret ?? "").slice(0, -1)}x`),
      fc.constant(`${userId}:${grantId}`),
      fc.constant(`${userId}:${grantId}:${secret}:extra`),
    );
    const field = fc.option(fc.oneof(tokenish, fc.constantFrom(ORIGIN, "https://evil.example", "mcp", "")), {
      nil: undefined,
    });
    const client = await OAuthTestClient.register(send);
    const p = await pkce();
    const { location } = await approve(new Browser(send), client, p);
    expect(location).toBeTruthy();

    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("token", "authorize", "register", "revoke"),
        fc.record({
          grant_type: fc.option(fc.constantFrom("authorization_code", "refresh_token", "client_credentials", ""), {
            nil: undefined,
          }),
          code: field,
          refresh_token: field,
          code_verifier: field,
          client_id: fc.option(fc.constantFrom(client.clientId, bob.client.clientId, "nope"), { nil: undefined }),
          redirect_uri: field,
          resource: field,
          token: field,
        }),
        fc.jsonValue({ maxDepth: 3 }),
        async (endpoint, fields, json) => {
          const form = new URLSearchParams();
          for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, v);
          let request: Request;
          if (endpoint === "token" || endpoint === "revoke") {
            if (endpoint === "revoke") form.delete("grant_type");
            request = new Request(`${ORIGIN}/token`, {
              method: "POST",
              headers: { "content-type": "application/x-www-form-urlencoded" },
              body: form.toString(),
            });
          } else if (endpoint === "authorize") {
            request = new Request(`${ORIGIN}/authorize?${form}&response_type=code`);
          } else {
            request = new Request(`${ORIGIN}/register`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify(json),
            });
          }
          const response = await send(request);
          const text = await response.text();
          expect(response.status < 500 || OK_5XX.has(response.status), `${endpoint}: ${response.status} ${text}`).toBe(
            true,
          );
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
    // Bob's grant is still there, and his own refresh token still works.
    expect((await kvKeys("grant:")).filter((k) => grantsBefore.includes(k))).toEqual(grantsBefore);
    expect((await bob.client.refresh(bob.refresh)).status).toBe(200);
  });
});
