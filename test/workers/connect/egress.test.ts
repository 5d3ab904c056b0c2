import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { BRIDGE_CONNECTION_HOST, BRIDGE_STATE_HOST } from "../../../container/src/contract.ts";
import { connectionOf, type ServerId } from "../../../policies/catalog.ts";
import type { ConnectionSpec } from "../../../policies/catalog.types.ts";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import { parseConfig } from "../../../worker/config.ts";
import { EGRESS_PLACEHOLDER, resolveConnection, tokenForProcess } from "../../../worker/connect/bridge-token.ts";
import { connectRuntime } from "../../../worker/connect/connect.runtime.ts";
import {
  type EgressDeps,
  type EgressRule,
  egressRuleOf,
  egressRules,
  handleEgressRequest,
  subjectOfContainerName,
} from "../../../worker/connect/egress.ts";
import { saveConnection } from "../../../worker/db/connections.repository.ts";
import { database } from "../../../worker/db/database.ts";
import type { Env } from "../../../worker/env.ts";
import { testSettings } from "../oauth/harness/workers.ts";
import { FAKE_UPSTREAM } from "./fake-upstream-oauth.ts";

const KEY_B64 = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i + 7)));
const SETTINGS = {
  HATAGO_CONNECT_PROVIDERS: "demo",
  HATAGO_CONNECT_DEMO_KIND: "oauth2",
  HATAGO_CONNECT_DEMO_CLIENT_ID: "hatago-test",
  HATAGO_CONNECT_DEMO_CLIENT_SECRET: "fake-secret",
  HATAGO_CONNECT_DEMO_AUTHORIZATION_URL: `${FAKE_UPSTREAM}/authorize`,
  HATAGO_CONNECT_DEMO_TOKEN_URL: `${FAKE_UPSTREAM}/token`,
  HATAGO_CONNECTION_KEYS: `k1:${KEY_B64}`,
};
const SERVER: ServerId = "whoami-upstream";
const DEMO = connectionOf(SERVER) ?? never();
/** whoami-upstream's connection as if its entry declared egress injection (the catalog declares none today). */
const WITH_EGRESS: ConnectionSpec = { ...DEMO, egress: { host: "api.upstream.example" } };
const RULE: EgressRule = egressRuleOf(SERVER, WITH_EGRESS) ?? never();

function runtime() {
  const parsed = parseConfig({ ...testSettings(), ...SETTINGS });
  if (!parsed.ok) throw new Error("test settings invalid");
  return connectRuntime(parsed.config.connect, parsed.config.publicUrl, {
    key: () => Promise.reject(new Error("unused")),
    insecureDevBridgeUrl: null,
  });
}

/**
 * The platform's side, faked (no container runs here): a container's id is derived from its name, and each
 * container answers its own name. `sent` records what would leave for the upstream (FakeUpstreamApi).
 */
function platform(names: Record<string, string>) {
  const sent: Request[] = [];
  const deps: EgressDeps = {
    nameOf: async (id) => names[id] ?? null,
    idOf: (name) => `id(${name})`,
    resolve: (server, principal) => resolveConnection(runtime(), env as unknown as Env, server, principal, null),
    fetch: async (request) => {
      sent.push(request);
      return new Response("upstream says hi", { status: 200 });
    },
  };
  return { deps, sent };
}

async function connectionFor(principal: string, token: string): Promise<void> {
  const rt = runtime();
  await saveConnection(database(env.DB), await rt.keys(), {
    principal,
    provider: "demo",
    subjects: [principal],
    tokens: { accessToken: token, refreshToken: null, expiresAtMs: null, scopes: ["profile"] },
  });
}

const bobName = `user:${SERVER}:mock:bob`;
const carolName = `user:${SERVER}:mock:carol`;
const processRequest = (headers: Record<string, string> = {}) =>
  new Request("https://api.upstream.example/user?x=1", {
    method: "POST",
    headers: { authorization: `Bearer ${EGRESS_PLACEHOLDER}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ q: 1 }),
  });

beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
});

describe("egress injection: the token is added outside the process (issue 17)", () => {
  it("bob's container's request to the declared host leaves with bob's token, set (not appended)", async () => {
    await connectionFor("mock:bob", "bob-secret-token");
    await connectionFor("mock:carol", "carol-secret-token");
    const { deps, sent } = platform({ [`id(${bobName})`]: bobName });
    const answer = await handleEgressRequest(processRequest({ "x-extra": "kept" }), RULE, `id(${bobName})`, deps);
    expect(answer.status).toBe(200);
    expect(sent).toHaveLength(1);
    const [out] = sent;
    expect(out?.url).toBe("https://api.upstream.example/user?x=1");
    expect(out?.method).toBe("POST");
    expect(out?.headers.get("authorization")).toBe("Bearer bob-secret-token");
    expect(out?.headers.get("x-extra")).toBe("kept");
    expect(out?.redirect).toBe("manual");
    expect(await out?.text()).toBe('{"q":1}');
  });

  it("a header the process set itself is replaced, so it cannot smuggle a second credential", async () => {
    await connectionFor("mock:bob", "bob-secret-token");
    const { deps, sent } = platform({ [`id(${bobName})`]: bobName });
    await handleEgressRequest(processRequest({ authorization: "Bearer stolen" }), RULE, `id(${bobName})`, deps);
    expect(sent[0]?.headers.get("authorization")).toBe("Bearer bob-secret-token");
  });
});

describe("SECURITY: egress bypass attempts", () => {
  it("a container whose name does not match its id gets nothing (carol's container claiming bob's name)", async () => {
    await connectionFor("mock:bob", "bob-secret-token");
    const { deps, sent } = platform({ [`id(${carolName})`]: bobName });
    const answer = await handleEgressRequest(processRequest(), RULE, `id(${carolName})`, deps);
    expect(answer.status).toBe(403);
    expect(sent).toEqual([]);
  });

  it("a container of another server, a shared one, or one that does not know its name gets nothing", async () => {
    await connectionFor("mock:bob", "bob-secret-token");
    for (const name of ["user:memory:mock:bob", `shared:${SERVER}`, "health", null]) {
      const id = `id(${name})`;
      const { deps, sent } = platform(name === null ? {} : { [id]: name });
      const answer = await handleEgressRequest(processRequest(), RULE, id, deps);
      expect(answer.status, String(name)).toBe(403);
      expect(sent).toEqual([]);
    }
  });

  it("a request to another host is not this rule's (no token)", async () => {
    await connectionFor("mock:bob", "bob-secret-token");
    const { deps, sent } = platform({ [`id(${bobName})`]: bobName });
    const answer = await handleEgressRequest(new Request("https://evil.example/"), RULE, `id(${bobName})`, deps);
    expect(answer.status).toBe(421);
    expect(sent).toEqual([]);
  });

  it("no connection: 401 with the connect page, and nothing reaches the upstream", async () => {
    const { deps, sent } = platform({ [`id(${bobName})`]: bobName });
    const answer = await handleEgressRequest(processRequest(), RULE, `id(${bobName})`, deps);
    expect(answer.status).toBe(401);
    expect(JSON.stringify(await answer.json())).toContain("/connect/demo");
    expect(sent).toEqual([]);
  });

  it("a blocked person's container gets nothing, and the connection is deleted (kill switch)", async () => {
    await connectionFor("mock:bob", "bob-secret-token");
    await env.DB.prepare("INSERT INTO blocks VALUES ('mock:bob', 'test', 'mock:alice', 1)").run();
    const { deps, sent } = platform({ [`id(${bobName})`]: bobName });
    expect((await handleEgressRequest(processRequest(), RULE, `id(${bobName})`, deps)).status).toBe(401);
    expect(sent).toEqual([]);
    expect((await env.DB.prepare("SELECT * FROM connections").all()).results).toEqual([]);
  });
});

describe("what the process holds", () => {
  it("in a container, an egress connection's process gets the placeholder; locally (no egress) the token", () => {
    expect(tokenForProcess(WITH_EGRESS, true, "t0ken")).toBe(EGRESS_PLACEHOLDER);
    expect(tokenForProcess(WITH_EGRESS, false, "t0ken")).toBe("t0ken");
    expect(tokenForProcess(DEMO, true, "t0ken")).toBe("t0ken");
  });
});

describe("egress declarations are checked when the Worker loads", () => {
  it("the host is one DNS name, never an internal host; the header a header name; the prefix printable", () => {
    for (const host of [
      "api.github.com:443",
      "*.github.com",
      "API.GITHUB.COM",
      "localhost",
      "https://api.github.com",
      BRIDGE_STATE_HOST,
      BRIDGE_CONNECTION_HOST,
    ]) {
      expect(() => egressRuleOf(SERVER, { ...DEMO, egress: { host } }), host).toThrow(/egress\.host/);
    }
    expect(() => egressRuleOf(SERVER, { ...DEMO, egress: { host: "api.github.com", header: "x y" } })).toThrow(
      /header/,
    );
    expect(() =>
      egressRuleOf(SERVER, { ...DEMO, egress: { host: "api.github.com", prefix: "Bearer \r\nX-Evil: 1 " } }),
    ).toThrow(/prefix/);
    expect(
      egressRuleOf(SERVER, { ...DEMO, egress: { host: "api.github.com", header: "X-Api-Key", prefix: "" } }),
    ).toEqual({ server: SERVER, provider: "demo", host: "api.github.com", header: "x-api-key", prefix: "" });
  });

  it("one host belongs to one server, which must be per-user", () => {
    const spec = (_: ServerId): ConnectionSpec => WITH_EGRESS;
    expect(() => egressRules([SERVER, "notes"], spec)).toThrow(/already/);
    expect(() => egressRules(["everything"], spec)).toThrow(/per-user/);
    expect(egressRules(["memory"], spec).get("api.upstream.example")?.server).toBe("memory");
  });

  it("today's catalog declares none, so the container class intercepts no HTTPS", () => {
    expect(egressRules().size).toBe(0);
  });

  it("a container's name says whose it is", () => {
    expect(subjectOfContainerName("user:whoami-upstream:github:12345")).toEqual({
      server: "whoami-upstream",
      principal: "github:12345",
    });
    expect(subjectOfContainerName("shared:memory")).toBeNull();
    expect(subjectOfContainerName(undefined)).toBeNull();
  });
});

function never(): never {
  throw new Error("unreachable");
}
