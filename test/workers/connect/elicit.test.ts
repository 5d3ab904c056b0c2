import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import {
  askForConnection,
  CONNECT_INPUT_KEY,
  type ConnectElicitation,
  connectElicitationOf,
  connectionGate,
  elicitAnswer,
  elicitInputRequest,
  elicitRequestParams,
  waitForConnection,
} from "../../../worker/connect/elicit.ts";
import { database } from "../../../worker/db/database.ts";
import { Browser, decodeEntities } from "../oauth/harness/browser.ts";
import { mockUpstream } from "../oauth/harness/flow.ts";
import { ORIGIN, type Send } from "../oauth/harness/oauth-client.ts";
import { testSettings, workerWith } from "../oauth/harness/workers.ts";
import { FAKE_UPSTREAM } from "./fake-upstream-oauth.ts";

/** Test-only keys (never used by any deployment): 32 bytes each, base64. */
const K1 = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => i + 1)));
const K2 = btoa(String.fromCharCode(...new Uint8Array(32).map((_, i) => 100 + i)));
const SETTINGS = {
  HATAGO_CONNECT_PROVIDERS: "demo",
  HATAGO_CONNECT_DEMO_KIND: "oauth2",
  HATAGO_CONNECT_DEMO_CLIENT_ID: "hatago-test",
  HATAGO_CONNECT_DEMO_CLIENT_SECRET: "fake-secret",
  HATAGO_CONNECT_DEMO_AUTHORIZATION_URL: `${FAKE_UPSTREAM}/authorize`,
  HATAGO_CONNECT_DEMO_TOKEN_URL: `${FAKE_UPSTREAM}/token`,
  HATAGO_CONNECTION_KEYS: `k1:${K1}`,
};

/** The gateway's elicitation settings for a key ring, as the session object builds them from its env. */
function elicitationWith(keys: string): ConnectElicitation {
  const built = connectElicitationOf({ ...testSettings(), ...SETTINGS, HATAGO_CONNECTION_KEYS: keys });
  if (!built) throw new Error("no connect provider configured");
  return built;
}

const db = () => database(env.DB);

async function addConnection(principal: string): Promise<void> {
  await env.DB.prepare(
    "INSERT INTO connections (principal, provider, key_id, sealed, expires_at_ms, scopes, subjects, connected_at_ms, updated_at_ms) VALUES (?, 'demo', 'k1', 'x', NULL, 'profile', '[]', 0, 0)",
  )
    .bind(principal)
    .run();
}

let send: Send;
beforeEach(async () => {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
  send = workerWith(SETTINGS);
});

describe("the ask: a URL-mode elicitation for the connect page (MCP 2025-11-25; issue 17)", () => {
  it("is made only when the server needs a connection the caller has not made", async () => {
    const elicitation = elicitationWith(`k1:${K1}`);
    expect(await elicitation.missing(db(), "mock:bob", "memory")).toBeNull();
    const ask = await elicitation.missing(db(), "mock:bob", "whoami-upstream");
    expect(ask?.provider.id).toBe("demo");
    const url = new URL(ask?.url ?? "");
    expect(`${url.origin}${url.pathname}`).toBe(`${ORIGIN}/connect/demo`);
    expect(url.searchParams.get("elicitation")).toMatch(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]{22}$/);
    // 2025-11-25 carries the id; the 2026-07-28 input request has none (its map key names it).
    expect(elicitRequestParams(ask ?? never())).toEqual({
      mode: "url",
      message: ask?.message,
      url: ask?.url,
      elicitationId: ask?.elicitationId,
    });
    expect(elicitInputRequest(ask ?? never())).toEqual({
      method: "elicitation/create",
      params: { mode: "url", message: ask?.message, url: ask?.url },
    });
    await addConnection("mock:bob");
    expect(await elicitation.missing(db(), "mock:bob", "whoami-upstream")).toBeNull();
  });

  it("the answer is read from untrusted input: accept, decline, cancel, or not an answer", () => {
    expect(elicitAnswer({ action: "accept" })).toBe("accept");
    expect(elicitAnswer({ action: "decline" })).toBe("decline");
    expect(elicitAnswer({ action: "cancel" })).toBe("cancel");
    expect(elicitAnswer({ action: "ACCEPT" })).toBeNull();
    expect(elicitAnswer("accept")).toBeNull();
    expect(elicitAnswer(null)).toBeNull();
  });
});

describe("SECURITY: the link is bound to the person and provider it was made for (elicitation §Phishing)", () => {
  it("opens for its person only, not for another provider, not when tampered with", async () => {
    const elicitation = elicitationWith(`k1:${K1}`);
    const ask = await elicitation.missing(db(), "mock:bob", "whoami-upstream");
    const link = new URL(ask?.url ?? "").searchParams.get("elicitation");
    expect(await elicitation.checkLink(link, "mock:bob", "demo")).toBe("ours");
    expect(await elicitation.checkLink(link, "mock:carol", "demo")).toBe("not_ours");
    expect(await elicitation.checkLink(link, "mock:bob", "github")).toBe("not_ours");
    const tampered = `${link?.slice(0, -1)}${link?.endsWith("A") ? "B" : "A"}`;
    expect(await elicitation.checkLink(tampered, "mock:bob", "demo")).toBe("not_ours");
    expect(await elicitation.checkLink("mock:bob", "mock:bob", "demo")).toBe("not_ours");
    expect(await elicitation.checkLink(null, "mock:bob", "demo")).toBe("absent");
  });

  it("a link made before a key rotation still opens; one made under a removed key does not", async () => {
    const before = elicitationWith(`k1:${K1}`);
    const link = new URL((await before.missing(db(), "mock:bob", "whoami-upstream"))?.url ?? "").searchParams.get(
      "elicitation",
    );
    expect(await elicitationWith(`k2:${K2},k1:${K1}`).checkLink(link, "mock:bob", "demo")).toBe("ours");
    expect(await elicitationWith(`k2:${K2}`).checkLink(link, "mock:bob", "demo")).toBe("not_ours");
  });
});

/** A browser signed in at /connect as `person` (mock login), having followed a sign-in toward `next`. */
async function signedInToward(person: string, next: string): Promise<{ browser: Browser; landed: string }> {
  const browser = new Browser(send);
  const start = await browser.get(`${ORIGIN}/connect/sign-in?next=${encodeURIComponent(next)}`);
  expect(start.status).toBe(302);
  const login = await mockUpstream(person)(browser, start.headers.get("Location") ?? "");
  const done = await browser.get(login.headers.get("Location") ?? "");
  expect(done.status).toBe(303);
  return { browser, landed: done.headers.get("Location") ?? "" };
}

describe("the connect page and a tool call's link", () => {
  async function linkFor(principal: string): Promise<string> {
    const ask = await elicitationWith(`k1:${K1}`).missing(db(), principal, "whoami-upstream");
    return `/connect/demo?elicitation=${new URL(ask?.url ?? "").searchParams.get("elicitation")}`;
  }

  it("signing in keeps the link's binding, and the page opens for its person", async () => {
    const link = await linkFor("mock:bob");
    const { browser, landed } = await signedInToward("bob", link);
    expect(landed).toBe(link);
    const page = await browser.get(`${ORIGIN}${landed}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("Continue to");
  });

  it("another person opening it is refused before any upstream, with a way to connect their own", async () => {
    const link = await linkFor("mock:bob");
    const { browser } = await signedInToward("carol", link);
    const page = await browser.get(`${ORIGIN}${link}`);
    expect(page.status).toBe(403);
    const body = decodeEntities(await page.text());
    expect(body).toContain("This link is not yours");
    expect(body).not.toContain('name="csrf"');
    expect(body).toContain('href="/connect/demo"');
    expect((await env.DB.prepare("SELECT * FROM connections").all()).results).toEqual([]);
  });

  it("open redirect: the sign-in leads only to a connect page, with nothing but a well-formed binding", async () => {
    for (const next of [
      "/connect/demo?elicitation=x&next=https://evil.example",
      "/connect/demo?next=https://evil.example",
      "https://evil.example/connect/demo",
      "/connect/other",
      "//evil.example/connect",
    ]) {
      expect((await signedInToward("bob", next)).landed, next).toBe("/connect");
    }
  });
});

describe("waiting for the connection", () => {
  it("ends when the row appears, at the deadline, or when the call is cancelled", async () => {
    setTimeout(() => void addConnection("mock:bob"), 50);
    expect(await waitForConnection(db(), "mock:bob", "demo", { deadlineMs: Date.now() + 5_000, pollMs: 10 })).toBe(
      "connected",
    );
    expect(await waitForConnection(db(), "mock:carol", "demo", { deadlineMs: Date.now() + 50, pollMs: 10 })).toBe(
      "timeout",
    );
    const cancel = new AbortController();
    setTimeout(() => cancel.abort(), 30);
    const waited = waitForConnection(db(), "mock:carol", "demo", {
      deadlineMs: Date.now() + 5_000,
      pollMs: 1_000,
      signal: cancel.signal,
    });
    expect(await waited).toBe("cancelled");
  });
});

describe("askForConnection: the legacy session's ask, answer and wait", () => {
  const channel = (answer: () => Promise<unknown>) => {
    const sent: unknown[] = [];
    const completed: string[] = [];
    return {
      sent,
      completed,
      elicit: async (params: unknown) => {
        sent.push(params);
        return answer();
      },
      complete: async (id: string) => {
        completed.push(id);
      },
      signal: new AbortController().signal,
    };
  };

  it("accept, then the person connects: the call goes on and the completion is sent for that id", async () => {
    const c = channel(async () => {
      setTimeout(() => void addConnection("mock:bob"), 30);
      return { action: "accept" };
    });
    const ask = askForConnection(elicitationWith(`k1:${K1}`), db(), "mock:bob", "whoami-upstream", c, {
      pollMs: 10,
    });
    expect(await ask).toBeNull();
    expect(c.completed).toEqual([(c.sent[0] as { elicitationId: string }).elicitationId]);
  });

  it("decline, cancel, no answer and a timeout each end the call with a tool error giving the connect page", async () => {
    const elicitation = elicitationWith(`k1:${K1}`);
    const cases: [() => Promise<unknown>, string][] = [
      [async () => ({ action: "decline" }), "You declined"],
      [async () => ({ action: "cancel" }), "was cancelled"],
      [async () => ({ action: "maybe" }), "was cancelled"],
      [() => Promise.reject(new Error("request timed out")), "have not connected yet"],
      [async () => ({ action: "accept" }), "not connected in time"],
    ];
    for (const [answer, says] of cases) {
      const c = channel(answer);
      const result = await askForConnection(elicitation, db(), "mock:carol", "whoami-upstream", c, {
        waitMs: 50,
        pollMs: 10,
      });
      expect(result?.isError, says).toBe(true);
      expect(result?.content[0]?.text).toContain(says);
      expect(result?.content[0]?.text).toContain(`Open ${ORIGIN}/connect/demo to connect it`);
      expect(c.completed).toEqual([]);
    }
  });

  it("nothing is asked when the connection exists or the server needs none", async () => {
    await addConnection("mock:bob");
    const c = channel(async () => ({ action: "accept" }));
    const elicitation = elicitationWith(`k1:${K1}`);
    expect(await askForConnection(elicitation, db(), "mock:bob", "whoami-upstream", c)).toBeNull();
    expect(await askForConnection(elicitation, db(), "mock:carol", "memory", c)).toBeNull();
    expect(c.sent).toEqual([]);
  });
});

describe("connectionGate: the 2026-07-28 ask (an InputRequiredResult) and its retry", () => {
  it("a call of its own asks only a client that declared URL elicitation, and only when the connection is missing", async () => {
    const elicitation = elicitationWith(`k1:${K1}`);
    const asked = await connectionGate(elicitation, db(), "mock:bob", "whoami-upstream", true, null);
    expect(asked.kind).toBe("ask");
    if (asked.kind === "ask") {
      expect(asked.key).toBe(CONNECT_INPUT_KEY);
      expect(asked.data).toEqual({ provider: "demo" });
      expect(asked.request.params.mode).toBe("url");
    }
    expect((await connectionGate(elicitation, db(), "mock:bob", "whoami-upstream", false, null)).kind).toBe("go");
    expect((await connectionGate(elicitation, db(), "mock:bob", "memory", true, null)).kind).toBe("go");
  });

  it("the retry: decline and a missing answer end the call; accept waits for the connection, then the call goes", async () => {
    const elicitation = elicitationWith(`k1:${K1}`);
    const retry = (answer: unknown) => ({ provider: "demo", responses: { [CONNECT_INPUT_KEY]: answer } });
    const declined = await connectionGate(
      elicitation,
      db(),
      "mock:bob",
      "whoami-upstream",
      true,
      retry({ action: "decline" }),
    );
    expect(declined.kind === "answer" && declined.result.content[0]?.text).toContain("You declined");
    const none = await connectionGate(elicitation, db(), "mock:bob", "whoami-upstream", true, {
      provider: "demo",
      responses: {},
    });
    expect(none.kind === "answer" && none.result.content[0]?.text).toContain("was cancelled");
    const late = await connectionGate(
      elicitation,
      db(),
      "mock:bob",
      "whoami-upstream",
      true,
      retry({ action: "accept" }),
      {
        waitMs: 30,
        pollMs: 10,
      },
    );
    expect(late.kind === "answer" && late.result.content[0]?.text).toContain("not connected in time");
    setTimeout(() => void addConnection("mock:bob"), 30);
    const go = await connectionGate(
      elicitation,
      db(),
      "mock:bob",
      "whoami-upstream",
      true,
      retry({ action: "accept" }),
      {
        pollMs: 10,
      },
    );
    expect(go.kind).toBe("go");
  });
});

function never(): never {
  throw new Error("unreachable");
}
