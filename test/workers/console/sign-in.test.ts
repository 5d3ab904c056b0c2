import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { Browser } from "../oauth/harness/browser.ts";
import { mockUpstream } from "../oauth/harness/flow.ts";
import { ORIGIN } from "../oauth/harness/oauth-client.ts";
import {
  adminBrowser,
  auditRows,
  CONSOLE,
  consoleSignIn,
  csrfOf,
  pageOf,
  postForm,
  seedDevPolicy,
  send,
} from "./harness.ts";

beforeEach(seedDevPolicy);

/** SECURITY: the console's page headers (http/security-headers.ts CONSOLE_CSP). */
function expectConsoleHeaders(headers: Headers): void {
  const csp = (headers.get("content-security-policy") ?? "").split(";").map((d) => d.trim());
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("script-src 'self'");
  expect(csp).toContain("form-action 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("base-uri 'none'");
  expect(headers.get("x-frame-options")).toBe("DENY");
  expect(headers.get("cache-control")).toBe("no-store");
  expect(headers.get("x-content-type-options")).toBe("nosniff");
}

describe("console sign-in: the same login as every client, the admin level required", () => {
  it("/admin without a session is a sign-in page (not a bare 401), with the console's headers", async () => {
    const page = await pageOf(new Browser(send), `${ORIGIN}/admin`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('href="/admin/console/sign-in"');
    expect(page.text).toContain("Sign in with");
    expectConsoleHeaders(page.headers);
    // Any other console page sends the browser to it.
    const other = await new Browser(send).get(`${CONSOLE}/audit`);
    expect(other.status).toBe(303);
    expect(other.headers.get("location")).toBe("/admin");
  });

  it("an admin signs in through the mock login and lands on the overview; the session cookie is __Host-", async () => {
    const browser = new Browser(send);
    const answer = await consoleSignIn(browser, "alice");
    expect(answer.status).toBe(303);
    expect(answer.headers.get("location")).toBe("/admin");
    const cookie = answer.headers.getSetCookie().find((c) => c.startsWith("__Host-hatago-console="));
    expect(cookie).toBeDefined();
    const attributes = (cookie ?? "").split(";").map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(["path=/", "secure", "httponly", "samesite=lax"]));
    expect(attributes.some((a) => a.startsWith("domain="))).toBe(false);
    expect(browser.cookieNames()).not.toContain("__Host-hatago-console-signin");

    const overview = await pageOf(browser, `${ORIGIN}/admin`);
    expect(overview.status).toBe(200);
    expect(overview.text).toContain("mock:alice");
    expect(overview.text).toContain(`${ORIGIN}/mcp`);
    expectConsoleHeaders(overview.headers);
    expect(await auditRows("admin:sign_in")).toMatchObject([{ principal: "mock:alice", decision: "allow" }]);
  });

  it("non-admin 403: bob signs in and gets a plain 403 page, no session, and a denied audit row", async () => {
    const browser = new Browser(send);
    const answer = await consoleSignIn(browser, "bob");
    expect(answer.status).toBe(403);
    const text = await answer.text();
    expect(text).toContain("does not have the admin level");
    expect(text).toContain("mock:bob");
    expect(browser.cookieNames()).not.toContain("__Host-hatago-console");
    expect(await auditRows("admin:sign_in")).toMatchObject([
      { principal: "mock:bob", decision: "deny", reason: "needs_admin" },
    ]);
    // And the grant the sign-in made is gone, so nothing of it can be reused.
    const { keys } = await env.OAUTH_KV.list({ prefix: "grant:mock%3Abob:" });
    expect(keys).toEqual([]);
  });

  it("login CSRF: a code for another browser's sign-in is refused at the console's callback", async () => {
    const victim = new Browser(send);
    const attacker = new Browser(send);
    const start = await attacker.get(`${CONSOLE}/sign-in`);
    const login = await mockUpstream("alice")(attacker, start.headers.get("Location") ?? "");
    // The victim's browser is made to open the attacker's callback URL.
    const landed = await victim.get(login.headers.get("Location") ?? "");
    expect(landed.status).toBe(400);
    expect(victim.cookieNames()).not.toContain("__Host-hatago-console");
  });

  it("a blocked admin: the open session is refused (401) and signing in again is refused", async () => {
    const browser = await adminBrowser();
    // As if another admin had blocked alice (an admin cannot block themselves through the API).
    await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
      .bind("mock:alice", "incident", "mock:root", Date.now())
      .run();
    const refused = await browser.get(`${CONSOLE}/people`);
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("blocked by an administrator");
    expect(refused.headers.getSetCookie().some((c) => /^__Host-hatago-console=;.*Max-Age=0/.test(c))).toBe(true);

    // Our shared login callback refuses a blocked person before any code is issued.
    const other = new Browser(send);
    const start = await other.get(`${CONSOLE}/sign-in`);
    const again = await mockUpstream("alice")(other, start.headers.get("Location") ?? "");
    expect(again.status).toBe(403);
    expect(await again.text()).toContain("blocked by an administrator");
  });

  it("sign-out revokes the session's grant: the cookie no longer opens the console", async () => {
    const browser = await adminBrowser();
    const overview = await pageOf(browser, `${ORIGIN}/admin`);
    const kept = new Browser(send);
    browser.cloneInto(kept);
    const out = await postForm(browser, `${CONSOLE}/sign-out`, { csrf: csrfOf(overview.text) });
    expect(out.status).toBe(200);
    expect(await out.text()).toContain("Signed out");
    // A copy of the old cookie is worthless now.
    const stale = await pageOf(kept, `${ORIGIN}/admin`);
    expect(stale.text).toContain("Sign in with");
  });
});

describe("CSRF on every form: a console post needs the session's token and this origin", () => {
  it("without the token, with a wrong one, or from another origin: 403; with it: the token page answers", async () => {
    const browser = await adminBrowser();
    const page = await pageOf(browser, `${CONSOLE}/token`);
    const csrf = csrfOf(page.text);
    expect((await postForm(browser, `${CONSOLE}/token`, { minutes: "5" })).status, "no token").toBe(403);
    expect((await postForm(browser, `${CONSOLE}/token`, { minutes: "5", csrf: `${csrf}x` })).status, "wrong").toBe(403);
    expect(
      (await postForm(browser, `${CONSOLE}/token`, { minutes: "5", csrf }, "https://evil.example")).status,
      "cross-site",
    ).toBe(403);
    expect((await postForm(browser, `${CONSOLE}/token`, { minutes: "5", csrf })).status).toBe(200);
  });
});

describe("the API token for scripts", () => {
  it("is a short-lived bearer token the JSON API accepts, audited, and dies with the session", async () => {
    const browser = await adminBrowser();
    const csrf = csrfOf((await pageOf(browser, `${CONSOLE}/token`)).text);
    const made = await postForm(browser, `${CONSOLE}/token`, { minutes: "5", csrf });
    const text = await made.text();
    const token = text.match(/<pre class="token" aria-label="API token">([^<]+)<\/pre>/)?.[1] ?? "";
    expect(token).toMatch(/^mock%3Aalice:/);
    expect(text).toContain(`curl -s -H "Authorization: Bearer $HATAGO_TOKEN" '${ORIGIN}/admin/audit?limit=20'`);
    const api = (t: string) =>
      send(new Request(`${ORIGIN}/admin/audit?limit=5`, { headers: { authorization: `Bearer ${t}` } }));
    const answer = await api(token);
    expect(answer.status).toBe(200);
    expect(await auditRows("admin:token")).toMatchObject([{ principal: "mock:alice", note: "5 minutes" }]);

    const overview = await pageOf(browser, `${ORIGIN}/admin`);
    await postForm(browser, `${CONSOLE}/sign-out`, { csrf: csrfOf(overview.text) });
    expect((await api(token)).status).toBe(401);
  });
});
