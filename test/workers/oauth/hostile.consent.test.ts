import { beforeEach, describe, expect, it } from "vitest";
import { Browser, formFields } from "./harness/browser.ts";
import { approve, clientRedirect, mockUpstream, signIn } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, pkce } from "./harness/oauth-client.ts";
import { kvKeys, viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

let client: OAuthTestClient;
beforeEach(async () => {
  client = await OAuthTestClient.register(send);
});

/** Opens the consent page in `browser` and returns its handle. */
async function consentHandle(browser: Browser): Promise<string> {
  const page = await browser.get(client.authorizeUrl(await pkce()));
  expect(page.status).toBe(200);
  return formFields(await page.text()).fields.handle ?? "";
}

function decide(browser: Browser, fields: Record<string, string>, origin: string | null = ORIGIN): Promise<Response> {
  return browser.postForm(`${ORIGIN}/authorize`, fields, origin === null ? {} : { Origin: origin });
}

async function expectRefusedPage(response: Response, status = 400): Promise<string> {
  const body = await response.text();
  expect(response.status, body).toBe(status);
  expect(response.headers.get("Location")).toBeNull();
  expect(response.headers.get("Content-Security-Policy")).toContain("frame-ancestors 'none'");
  return body;
}

describe("per-client consent before any upstream redirect (MCP best practices: confused deputy, CVE-2026-27124)", () => {
  it("a client registered by anyone stops at our consent page: no redirect, no upstream state yet", async () => {
    const browser = new Browser(send);
    const page = await browser.get(client.authorizeUrl(await pkce()));
    expect(page.status).toBe(200);
    expect(page.headers.get("Location")).toBeNull();
    const html = await page.text();
    expect(html).toContain("This application registered itself");
    expect(html).toContain("Access will be sent to <strong>client.example</strong>");
    // Only the consent binding cookie exists; the upstream `state` (and its cookie) come after approval.
    expect(browser.cookieNames()).toHaveLength(1);
    expect(browser.cookieNames()[0]).toMatch(/^__Host-oauth-consent-/);
  });

  it("the consent binding cookie is __Host-, Secure, HttpOnly, SameSite=Lax", async () => {
    const page = await new Browser(send).get(client.authorizeUrl(await pkce()));
    const cookie = page.headers.getSetCookie()[0] ?? "";
    expect(cookie).toMatch(/^__Host-oauth-consent-[^=]+=/);
    expect(cookie).toMatch(/;\s*Secure/i);
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Lax/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
  });

  it("Deny sends the client access_denied with its state and iss", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    const back = clientRedirect(await decide(browser, { handle, decision: "deny" }), client);
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(await kvKeys("grant:")).toEqual([]);
  });
});

describe("consent form forgery: bypass attempts", () => {
  it("altered hidden fields change nothing: the request comes back from storage (workers-oauth-provider PR #92)", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    const approved = await decide(browser, {
      handle,
      decision: "approve",
      client_id: "attacker-client",
      redirect_uri: "https://evil.example/steal",
      scope: "admin",
      state: "attacker-state",
    });
    expect(approved.status).toBe(302);
    const callback = await mockUpstream("alice")(browser, approved.headers.get("Location") ?? "");
    const back = clientRedirect(callback, client);
    expect(back.searchParams.get("code")).toBeTruthy();
  });

  it("a post without the handle (missing CSRF token) is refused", async () => {
    const browser = new Browser(send);
    await consentHandle(browser);
    await expectRefusedPage(await decide(browser, { decision: "approve" }));
  });

  it("a forged handle is refused", async () => {
    const browser = new Browser(send);
    await consentHandle(browser);
    await expectRefusedPage(await decide(browser, { handle: "A".repeat(43), decision: "approve" }));
  });

  it("a handle posted from another browser (no binding cookie) is refused, and still works in its own", async () => {
    const victim = new Browser(send);
    const handle = await consentHandle(victim);
    await expectRefusedPage(await decide(new Browser(send), { handle, decision: "approve" }));
    expect((await decide(victim, { handle, decision: "approve" })).status).toBe(302);
  });

  it("a handle posted with another browser's own consent cookie is refused", async () => {
    const victim = new Browser(send);
    const attacker = new Browser(send);
    const victimHandle = await consentHandle(victim);
    await consentHandle(attacker);
    await expectRefusedPage(await decide(attacker, { handle: victimHandle, decision: "approve" }));
  });

  it("a handle works once: approving twice is refused the second time", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    const copy = new Browser(send);
    browser.cloneInto(copy); // keep the cookie the first approval clears
    expect((await decide(browser, { handle, decision: "approve" })).status).toBe(302);
    await expectRefusedPage(await decide(copy, { handle, decision: "approve" }));
  });

  it("a post from another site (Origin) is refused with 403", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    await expectRefusedPage(await decide(browser, { handle, decision: "approve" }, "https://evil.example"), 403);
  });

  it("a repeated handle or decision field is refused", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    const body = new URLSearchParams([
      ["handle", handle],
      ["decision", "deny"],
      ["decision", "approve"],
    ]);
    await expectRefusedPage(await browser.postForm(`${ORIGIN}/authorize`, body, { Origin: ORIGIN }));
  });

  it("a decision other than approve or deny is refused", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    await expectRefusedPage(await decide(browser, { handle, decision: "maybe" }));
  });

  it("a JSON body is refused with 415 (wrong Content-Type)", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    const response = await send(
      new Request(`${ORIGIN}/authorize`, {
        method: "POST",
        body: JSON.stringify({ handle, decision: "approve" }),
        headers: { "Content-Type": "application/json" },
      }),
    );
    await expectRefusedPage(response, 415);
  });

  it("an oversized form is refused with 413", async () => {
    const browser = new Browser(send);
    const handle = await consentHandle(browser);
    await expectRefusedPage(await decide(browser, { handle, decision: "approve", junk: "x".repeat(10_000) }), 413);
  });
});

describe("upstream state: single use, created after consent, bound to the browser", () => {
  it("replaying the upstream callback is refused and issues nothing more", async () => {
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const copy = new Browser(send);
    browser.cloneInto(copy);
    await signInFrom(browser, location);
    expect(await kvKeys("grant:")).toHaveLength(1);
    const replay = await mockUpstream("alice")(copy, location);
    await expectRefusedPage(replay);
    expect(await kvKeys("grant:")).toHaveLength(1);
  });

  it("a state opened in another browser (no cookie) is refused; the state stays usable by its own browser", async () => {
    const victim = new Browser(send);
    const { location } = await approve(victim, client);
    await expectRefusedPage(await mockUpstream("alice")(new Browser(send), location));
    expect(await kvKeys("grant:")).toEqual([]);
    await signInFrom(victim, location);
  });

  it("a state used with another browser's own upstream cookie is refused", async () => {
    const victim = new Browser(send);
    const attacker = new Browser(send);
    const { location } = await approve(victim, client);
    await approve(attacker, client); // the attacker holds an upstream cookie of its own
    await expectRefusedPage(await mockUpstream("alice")(attacker, location));
  });

  it("a callback without state is refused", async () => {
    const browser = new Browser(send);
    await approve(browser, client);
    const response = await browser.postForm(`${ORIGIN}/login/mock/callback`, { identity: "alice" }, { Origin: ORIGIN });
    await expectRefusedPage(response);
  });

  it("a malformed mock form is refused before the state is used", async () => {
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const state = new URL(location).searchParams.get("state") ?? "";
    const bad = await browser.postForm(`${ORIGIN}/login/mock/callback?state=${state}`, { identity: "mallory" });
    await expectRefusedPage(bad);
    const badGroup = await browser.postForm(`${ORIGIN}/login/mock/callback?state=${state}`, {
      identity: "alice",
      groups: "Admins!",
    });
    await expectRefusedPage(badGroup);
    await signInFrom(browser, location);
  });
});

async function signInFrom(browser: Browser, location: string): Promise<void> {
  const back = clientRedirect(await mockUpstream("alice")(browser, location), client);
  expect(back.searchParams.get("code")).toBeTruthy();
}

describe("the same flow still works after all that (control)", () => {
  it("signs in", async () => {
    await signIn(new Browser(send), client, mockUpstream("bob"));
  });
});
