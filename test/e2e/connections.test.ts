// Each person's own upstream account (issue 17), end to end: the real MCP SDK client through OAuth, the local
// stack as `npm start` runs it, real Chromium at /connect, and a fake upstream OAuth provider (named as a fake)
// the Worker is pointed at through local-stack's `connect` setting. Ports 18630–18639: the stack on
// 18630–18632, the fake upstream on 18633.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "./helpers/chromium.ts";
import { d1Query } from "./helpers/d1.ts";
import { FakeUpstreamOAuth } from "./helpers/fake-upstream-oauth.ts";
import { type Connected, connectAs } from "./helpers/mcp-client.ts";
import type { DemoPerson } from "./helpers/oauth-flow.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

const STACK_PORT = 18_630;
const FAKE_UPSTREAM_PORT = 18_633;
const TOOL = "whoami-upstream__whoami";

/** What a person reads in an element, whitespace collapsed. */
const text = async (page: Page, selector: string) =>
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what a person reads.
  (await page.locator(selector).first().innerText()).replace(/\s+/g, " ").trim();

/** The text of a tool result. */
const textOf = (result: unknown): string =>
  ((result as { content?: { type: string; text?: string }[] }).content ?? []).map((c) => c.text ?? "").join("\n");

/** The environment of a running process, as the kernel holds it (empty when it is gone). */
async function environOf(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "")).replaceAll("\0", "\n");
}

/** Every file under `dir` whose contents include `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await readFile(file).catch(() => Buffer.alloc(0))).includes(needle)) found.push(file);
  }
  return found;
}

describe("connections end to end: bob acts upstream as bob, never as carol (issue 17)", () => {
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

  async function mcp(person: DemoPerson): Promise<Connected> {
    const c = await connectAs(stack.url, person);
    clients.push(c);
    return c;
  }

  /** The pids of whoami-upstream's processes, from the bridge's /health. */
  async function whoamiPids(): Promise<number[]> {
    const health = (await (await fetch(`${stack.bridgeUrl}/health`)).json()) as {
      servers: Record<string, { children?: { pid: number | null }[] }>;
    };
    return (health.servers["whoami-upstream"]?.children ?? []).flatMap((c) => (c.pid === null ? [] : [c.pid]));
  }

  /** The one whoami-upstream process whose environment holds `token`, or none. */
  async function processesHolding(token: string): Promise<number[]> {
    const pids: number[] = [];
    for (const pid of await whoamiPids()) if ((await environOf(pid)).includes(token)) pids.push(pid);
    return pids;
  }

  /** A person's data directory of whoami-upstream on the bridge (named by a hash of the principal). */
  const dataDirOf = (principal: string) =>
    path.join(
      stack.stateDir,
      "bridge-data",
      "whoami-upstream",
      createHash("sha256").update(principal).digest("hex").slice(0, 32),
    );

  /** Opens `url` in a fresh Chromium profile, signs in as `person` (mock login) when asked. */
  async function signedInAt(url: string, person: DemoPerson): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    expect(await text(page, "h1")).toBe("Sign in to manage your connections");
    await Promise.all([page.waitForURL(/\/login\/mock\?/), page.getByRole("link", { name: /^Sign in with/ }).click()]);
    await Promise.all([
      page.waitForURL(new URL(url).pathname === "/connect" ? /\/connect$/ : /\/connect\/demo$/),
      page.locator(`form:has(input[name="identity"][value="${person}"]) button[type="submit"]`).click(),
    ]);
    return page;
  }

  /** In Chromium: the connect URL → sign in → our page → the fake upstream's form → "connected". */
  async function connectInChromium(connectUrl: string, person: DemoPerson, login: string): Promise<Page> {
    const page = await signedInAt(connectUrl, person);
    expect(await text(page, "h1")).toBe("Connect your Fake upstream account");
    const ours = await text(page, "body");
    expect(ours).toContain("whoami-upstream");
    expect(ours).toContain("profile");
    expect(ours).toContain(`mock:${person}`);
    await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:18633\/authorize\?/), page.getByRole("button").click()]);
    await page.getByLabel("Upstream account").fill(login);
    await Promise.all([
      page.waitForURL(/\/connect\/demo\/callback\?/),
      page.getByRole("button", { name: "Allow" }).click(),
    ]);
    expect(await text(page, "h1")).toBe("Connected to Fake upstream");
    return page;
  }

  let bob: Connected;
  let carol: Connected;

  it("carol connects and her calls act as her upstream account", async () => {
    carol = await mcp("carol");
    const first = await carol.client.callTool({ name: TOOL, arguments: {} });
    expect(first.isError).toBe(true);
    const connectUrl = /(http:\/\/\S+\/connect\/demo)\b/.exec(textOf(first))?.[1] ?? "";
    expect(connectUrl).toBe(`${stack.url}/connect/demo`);
    await connectInChromium(connectUrl, "carol", "carol-upstream");
    const again = await carol.client.callTool({ name: TOOL, arguments: {} });
    expect(textOf(again)).toBe("upstream account: carol-upstream");
    expect(upstream.seen.map((s) => s.login)).toEqual(["carol-upstream"]);
  });

  it("bob without a connection: the tool error gives the connect URL; the server's tools are still listed", async () => {
    bob = await mcp("bob");
    const tools = await bob.client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain(TOOL);
    const seenBefore = upstream.seen.length;
    const answer = await bob.client.callTool({ name: TOOL, arguments: {} });
    expect(answer.isError).toBe(true);
    expect(textOf(answer)).toContain(`${stack.url}/connect/demo`);
    // Nothing reached the upstream, and bob's process (if it started) holds no token.
    expect(upstream.seen.length).toBe(seenBefore);
    expect(await processesHolding("UPSTREAM_ACCESS_TOKEN=")).toHaveLength(1); // carol's
  });

  it("bob connects in Chromium; his call then acts as bob-upstream with bob's token, never carol's", async () => {
    await connectInChromium(`${stack.url}/connect/demo`, "bob", "bob-upstream");
    const seenBefore = upstream.seen.length;
    const answer = await bob.client.callTool({ name: TOOL, arguments: {} });
    expect(answer.isError).toBeFalsy();
    expect(textOf(answer)).toBe("upstream account: bob-upstream");
    const [bobToken] = upstream.tokensOf("bob-upstream");
    const [carolToken] = upstream.tokensOf("carol-upstream");
    expect(bobToken).toBeDefined();
    expect(carolToken).toBeDefined();
    // The upstream saw bob's token for bob's call; carol's token only ever came with carol's own call.
    expect(upstream.seen.slice(seenBefore)).toEqual([{ token: bobToken, login: "bob-upstream" }]);
    expect(upstream.seen.filter((s) => s.token === carolToken)).toHaveLength(1);
    expect(upstream.badClients).toEqual([]);

    // Each token is in exactly one process: its person's. Carol's process never had bob's (environment, files).
    const [bobPid] = await processesHolding(`UPSTREAM_ACCESS_TOKEN=${bobToken}`);
    const [carolPid] = await processesHolding(`UPSTREAM_ACCESS_TOKEN=${carolToken}`);
    expect(await processesHolding(bobToken ?? "")).toEqual([bobPid]);
    expect(await processesHolding(carolToken ?? "")).toEqual([carolPid]);
    expect(bobPid).not.toBe(carolPid);
    expect(await environOf(carolPid ?? 0)).not.toContain(bobToken);
    expect(await filesContaining(dataDirOf("mock:carol"), bobToken ?? "")).toEqual([]);
    // Stored sealed: neither token is in the stack's files (D1, KV, bridge data) as plain text.
    expect(await filesContaining(stack.stateDir, bobToken ?? "")).toEqual([]);
    expect(await filesContaining(stack.stateDir, carolToken ?? "")).toEqual([]);
    const rows = await d1Query(stack.stateDir, "SELECT principal, provider FROM connections ORDER BY principal");
    expect(rows).toEqual([
      { principal: "mock:bob", provider: "demo" },
      { principal: "mock:carol", provider: "demo" },
    ]);
    // The MCP client never saw a token: not in any answer, not in the bridge's or the Worker's output.
    expect(JSON.stringify(answer)).not.toContain(bobToken);
    expect(stack.output.join("\n")).not.toContain(bobToken);
    expect(stack.output.join("\n")).not.toContain(carolToken);
  });

  it("bob disconnects at /connect: the token leaves storage and his running process; carol's stays", async () => {
    const [bobToken] = upstream.tokensOf("bob-upstream");
    const [carolToken] = upstream.tokensOf("carol-upstream");
    const [bobPid] = await processesHolding(bobToken ?? "");
    expect(bobPid).toBeDefined();
    const page = await signedInAt(`${stack.url}/connect`, "bob");
    expect(await text(page, "body")).toContain("connected");
    await Promise.all([page.waitForURL(/\/connect$/), page.getByRole("button", { name: "Disconnect" }).click()]);
    expect(await text(page, "body")).toContain("not connected");

    expect(await d1Query(stack.stateDir, "SELECT principal FROM connections")).toEqual([{ principal: "mock:carol" }]);
    expect(await processesHolding(bobToken ?? "")).toEqual([]);
    expect(await environOf(bobPid ?? 0)).toBe(""); // stopped
    expect(await processesHolding(carolToken ?? "")).toHaveLength(1);
    const next = await bob.client.callTool({ name: TOOL, arguments: {} });
    expect(next.isError).toBe(true);
    expect(textOf(next)).toContain(`${stack.url}/connect/demo`);
    // Audit rows reach D1 shortly after the answer (the ledger ships them, worker/audit/ledger.ts).
    const sql =
      "SELECT action, reason FROM audit_log WHERE principal = 'mock:bob' AND action LIKE 'connection:%' ORDER BY at_ms, id";
    let audit = await d1Query(stack.stateDir, sql);
    for (let tries = 0; audit.length < 3 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      audit = await d1Query(stack.stateDir, sql);
    }
    expect(audit.map((r) => `${r.action} ${r.reason}`)).toEqual([
      "connection:connect connected",
      "connection:use connected",
      "connection:disconnect by_person",
    ]);
    expect(JSON.stringify(audit)).not.toContain("fake-at-");
  });

  it("blocking bob removes his (new) connection from storage and from his running process", async () => {
    await connectInChromium(`${stack.url}/connect/demo`, "bob", "bob-upstream");
    expect(textOf(await bob.client.callTool({ name: TOOL, arguments: {} }))).toBe("upstream account: bob-upstream");
    const bobToken = upstream.tokensOf("bob-upstream").at(-1) ?? "";
    const [bobPid] = await processesHolding(bobToken);
    expect(bobPid).toBeDefined();

    const alice = await mcp("alice");
    const res = await fetch(`${stack.url}/admin/block`, {
      method: "POST",
      headers: { authorization: `Bearer ${alice.token()}`, "content-type": "application/json" },
      body: JSON.stringify({ subject: "mock:bob", reason: "e2e: lost laptop" }),
    });
    expect(res.status).toBe(200);
    expect(await d1Query(stack.stateDir, "SELECT principal FROM connections")).toEqual([{ principal: "mock:carol" }]);
    expect(await processesHolding(bobToken)).toEqual([]);
    expect(await environOf(bobPid ?? 0)).toBe("");
    // Carol is untouched.
    expect(textOf(await carol.client.callTool({ name: TOOL, arguments: {} }))).toBe("upstream account: carol-upstream");
  });
});
