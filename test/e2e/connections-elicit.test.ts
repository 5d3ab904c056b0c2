// Asked for when missing (issue 17, MCP 2025-11-25 URL-mode elicitation), end to end: the real MCP SDK 1.32 client
// declaring `elicitation: { url: {} }`, the local stack as `npm start` runs it, real Chromium opening the link the
// gateway hands out, and a fake upstream OAuth provider (named as a fake). Ports 18720–18729: the stack on
// 18720–18722, the fake upstream on 18723.
import {
  ElicitationCompleteNotificationSchema,
  ElicitRequestSchema,
  type ElicitRequestURLParams,
  type ElicitResult,
} from "@modelcontextprotocol/sdk/types.js";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./helpers/chromium.ts";
import { d1Query } from "./helpers/d1.ts";
import { FakeUpstreamOAuth } from "./helpers/fake-upstream-oauth.ts";
import { type Connected, connectAs } from "./helpers/mcp-client.ts";
import type { DemoPerson } from "./helpers/oauth-flow.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

const STACK_PORT = 18_720;
const FAKE_UPSTREAM_PORT = 18_723;
const TOOL = "whoami-upstream__whoami";
/** Longer than the SDK's 60 s default: the call waits while a person signs in and consents in the browser. */
const CALL_TIMEOUT_MS = 120_000;

/** What a person reads in an element, whitespace collapsed. */
const text = async (page: Page, selector: string) =>
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person reads.
  (await page.locator(selector).first().innerText()).replace(/\s+/g, " ").trim();

/** The text of a tool result. */
const textOf = (result: unknown): string =>
  ((result as { content?: { type: string; text?: string }[] }).content ?? []).map((c) => c.text ?? "").join("\n");

/** A client's person and what it does when the gateway asks it to open a URL. */
interface Asker {
  readonly asked: ElicitRequestURLParams[];
  readonly completed: string[];
  /** What the person does with the next ask: opens it in the browser (and accepts), or declines. */
  next: (params: ElicitRequestURLParams) => Promise<ElicitResult>;
}

describe("URL elicitation for a missing connection (MCP 2025-11-25; issue 17)", () => {
  const upstream = new FakeUpstreamOAuth(FAKE_UPSTREAM_PORT);
  let stack: TestStack;
  let browser: Browser;
  const clients: Connected[] = [];

  beforeAll(async () => {
    await upstream.start();
    stack = await startTestStack(STACK_PORT, { connect: upstream.stackConnect() });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.client.close().catch(() => {})));
    await browser?.close();
    await stack?.dispose();
    await upstream.stop();
  });

  /** Rows of `sql` once there are any (or none after 10 s). */
  async function shipped(sql: string): Promise<Record<string, unknown>[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const rows = await d1Query(stack.stateDir, sql);
      if (rows.length > 0 || Date.now() > deadline) return rows;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The real SDK client of `person`, declaring URL elicitation, answering asks as `asker.next` says. */
  async function mcpWithUrlElicitation(person: DemoPerson, asker: Asker): Promise<Connected> {
    const c = await connectAs(stack.url, person, {
      clientOptions: { capabilities: { elicitation: { url: {} } } },
      setup: (client) => {
        client.setRequestHandler(ElicitRequestSchema, async (request) => {
          if (request.params.mode !== "url") throw new Error("only URL mode was declared");
          asker.asked.push(request.params);
          return asker.next(request.params);
        });
        client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
          asker.completed.push(n.params.elicitationId);
        });
      },
    });
    clients.push(c);
    return c;
  }

  /** A fresh Chromium profile at `url`: sign in as `person` (mock login), back at the page the link named. */
  async function openSignedIn(url: string, person: DemoPerson): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    expect(await text(page, "h1")).toBe("Sign in to manage your connections");
    await Promise.all([page.waitForURL(/\/login\/mock\?/), page.getByRole("link", { name: /^Sign in with/ }).click()]);
    await Promise.all([
      page.waitForURL((u) => u.pathname === "/connect/demo"),
      page.locator(`form:has(input[name="identity"][value="${person}"]) button[type="submit"]`).click(),
    ]);
    return page;
  }

  /** In Chromium: the elicitation's URL → sign in → our page → the fake upstream's form → "connected". */
  async function connectThrough(url: string, person: DemoPerson, login: string): Promise<void> {
    const page = await openSignedIn(url, person);
    // The binding came through the sign-in: the page is the one the link named, for this person.
    expect(new URL(page.url()).searchParams.get("elicitation")).toBe(new URL(url).searchParams.get("elicitation"));
    expect(await text(page, "h1")).toBe("Connect your Fake upstream account");
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(`${upstream.url}/authorize?`)),
      page.getByRole("button").click(),
    ]);
    await page.getByLabel("Upstream account").fill(login);
    await Promise.all([
      page.waitForURL(/\/connect\/demo\/callback\?/),
      page.getByRole("button", { name: "Allow" }).click(),
    ]);
    expect(await text(page, "h1")).toBe("Connected to Fake upstream");
    await page.context().close();
  }

  it("bob's call asks his client to open the connect page, waits, and completes as bob after he connects", async () => {
    let browsing: Promise<void> = Promise.resolve();
    const asker: Asker = {
      asked: [],
      completed: [],
      // The client has the person's consent, opens the URL, and answers `accept` (2025-11-25: accept means
      // "opened", not "done"); the browser flow goes on while the call waits.
      next: async (params) => {
        browsing = connectThrough(params.url, "bob", "bob-upstream");
        return { action: "accept" };
      },
    };
    const bob = await mcpWithUrlElicitation("bob", asker);
    const seenBefore = upstream.seen.length;
    const answer = await bob.client.callTool({ name: TOOL, arguments: {} }, undefined, { timeout: CALL_TIMEOUT_MS });
    await browsing;

    expect(answer.isError).toBeFalsy();
    expect(textOf(answer)).toBe("upstream account: bob-upstream");
    // One ask, in URL mode, with an id, for the connect page of the server's provider on this gateway.
    expect(asker.asked).toHaveLength(1);
    const [ask] = asker.asked;
    expect(ask?.mode).toBe("url");
    expect(ask?.elicitationId).toMatch(/^[0-9a-f-]{36}$/);
    const url = new URL(ask?.url ?? "");
    expect(`${url.origin}${url.pathname}`).toBe(`${stack.url}/connect/demo`);
    expect(ask?.message).toContain("whoami-upstream");
    // The URL names no one: only the elicitation id and its tag (MCP 2025-11-25, Safe URL Handling).
    expect(url.search).not.toContain("bob");
    // The completion notice for that id, on the call's stream (2025-11-25, Completion Notifications).
    expect(asker.completed).toEqual([ask?.elicitationId]);
    // The fake upstream saw bob's own token for bob's call, and nothing else.
    const [bobToken] = upstream.tokensOf("bob-upstream");
    expect(bobToken).toBeDefined();
    expect(upstream.seen.slice(seenBefore)).toEqual([{ token: bobToken, login: "bob-upstream" }]);
    expect(JSON.stringify(answer)).not.toContain(bobToken);
    expect(await d1Query(stack.stateDir, "SELECT principal FROM connections")).toEqual([{ principal: "mock:bob" }]);

    // Connected now: the next call asks nothing.
    const again = await bob.client.callTool({ name: TOOL, arguments: {} });
    expect(textOf(again)).toBe("upstream account: bob-upstream");
    expect(asker.asked).toHaveLength(1);
  }, 180_000);

  it("carol declines: the call ends with a clear tool error naming the connect page; nothing is stored", async () => {
    const asker: Asker = { asked: [], completed: [], next: async () => ({ action: "decline" }) };
    const carol = await mcpWithUrlElicitation("carol", asker);
    const answer = await carol.client.callTool({ name: TOOL, arguments: {} });
    expect(answer.isError).toBe(true);
    expect(textOf(answer)).toBe(
      `You declined to connect your Fake upstream account, so the "whoami-upstream" server cannot act as you. ` +
        `Open ${stack.url}/connect/demo to connect it, then call again.`,
    );
    expect(asker.asked).toHaveLength(1);
    expect(asker.completed).toEqual([]);
    expect(await d1Query(stack.stateDir, "SELECT principal FROM connections")).toEqual([{ principal: "mock:bob" }]);
    // The call was decided and answered: one audit row, a tool error, and no use of any connection by carol.
    // Audit rows reach D1 shortly after the answer (the ledger ships them, worker/audit/ledger.ts).
    const rows = await shipped(
      "SELECT action, outcome FROM audit_log WHERE principal = 'mock:carol' AND (action = 'tools/call' OR action LIKE 'connection:%')",
    );
    expect(rows).toEqual([{ action: "tools/call", outcome: "tool_error" }]);
  }, 120_000);

  it("phishing: carol's link opened by dave connects nothing (MCP 2025-11-25 elicitation §Phishing)", async () => {
    let link = "";
    const asker: Asker = {
      asked: [],
      completed: [],
      next: async (params) => {
        link = params.url;
        return { action: "cancel" };
      },
    };
    const carol = await mcpWithUrlElicitation("carol", asker);
    const answer = await carol.client.callTool({ name: TOOL, arguments: {} });
    expect(answer.isError).toBe(true);
    expect(textOf(answer)).toContain("was cancelled");
    // Dave opens carol's link (sent to him by someone): refused before any upstream, with a way to his own.
    const page = await openSignedIn(link, "dave");
    expect(await text(page, "h1")).toBe("This link is not yours");
    expect(await page.locator("form").count()).toBe(0);
    await page.context().close();
    expect(await d1Query(stack.stateDir, "SELECT principal FROM connections")).toEqual([{ principal: "mock:bob" }]);
  }, 120_000);

  /** One 2026-07-28 tools/call of whoami, as a stateless POST with the request's own `_meta` (JSON or a stream). */
  async function modernCall(token: string, extra: Record<string, unknown>, capabilities: Record<string, unknown>) {
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": TOOL,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: TOOL,
          arguments: {},
          ...extra,
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { name: "e2e-modern", version: "1.0.0" },
            "io.modelcontextprotocol/clientCapabilities": capabilities,
          },
        },
      }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const json = res.headers.get("content-type")?.includes("text/event-stream")
      ? (text
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => JSON.parse(l.slice(5)) as { id?: unknown })
          .find((m) => m.id === 1) ?? {})
      : JSON.parse(text);
    return (json as { result: Record<string, unknown> }).result;
  }

  it("2026-07-28 (MRTR): the ask travels in an InputRequiredResult; the retry that accepts completes as carol", async () => {
    const carol = await connectAs(stack.url, "carol");
    clients.push(carol);
    const url = { elicitation: { url: {} } };
    const first = await modernCall(carol.token(), {}, url);
    expect(first.resultType).toBe("input_required");
    const requests = first.inputRequests as Record<string, { method: string; params: Record<string, unknown> }>;
    const ask = requests["hatago-connect"];
    expect(ask?.method).toBe("elicitation/create");
    expect(ask?.params.mode).toBe("url");
    // That revision's URL mode has no elicitationId (the map's key names the request).
    expect(ask?.params.elicitationId).toBeUndefined();
    expect(String(ask?.params.url).startsWith(`${stack.url}/connect/demo?elicitation=`)).toBe(true);
    expect(typeof first.requestState).toBe("string");

    // The client opens the page and retries at once with `accept`: the retry waits while carol connects.
    const seenBefore = upstream.seen.length;
    const [answer] = await Promise.all([
      modernCall(
        carol.token(),
        { inputResponses: { "hatago-connect": { action: "accept" } }, requestState: first.requestState },
        url,
      ),
      connectThrough(String(ask?.params.url), "carol", "carol-upstream"),
    ]);
    expect(answer.resultType).toBe("complete");
    expect(textOf(answer)).toBe("upstream account: carol-upstream");
    expect(upstream.seen.slice(seenBefore)).toEqual([
      { token: upstream.tokensOf("carol-upstream").at(-1), login: "carol-upstream" },
    ]);
  }, 180_000);

  it("2026-07-28: a decline ends the call with the clear error; without URL elicitation, the error with the URL", async () => {
    const alice = await connectAs(stack.url, "alice");
    clients.push(alice);
    const first = await modernCall(alice.token(), {}, { elicitation: { url: {} } });
    expect(first.resultType).toBe("input_required");
    const declined = await modernCall(
      alice.token(),
      { inputResponses: { "hatago-connect": { action: "decline" } }, requestState: first.requestState },
      { elicitation: { url: {} } },
    );
    expect(declined.isError).toBe(true);
    expect(textOf(declined)).toContain("You declined to connect your Fake upstream account");
    // A client that did not declare URL elicitation is asked nothing: the tool error gives the connect page.
    const plain = await modernCall(alice.token(), {}, { elicitation: { form: {} } });
    expect(plain.resultType).toBe("complete");
    expect(plain.isError).toBe(true);
    expect(textOf(plain)).toContain(`${stack.url}/connect/demo`);
    expect((await d1Query(stack.stateDir, "SELECT principal FROM connections ORDER BY principal")).length).toBe(2);
  }, 120_000);
});
