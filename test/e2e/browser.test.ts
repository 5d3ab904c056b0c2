// Our consent page and the mock login as a person sees them, in real Chromium (issue 5). Ports 18520–18529:
// the stack on 18520–18522, the MCP client's loopback redirect URI (and a page on another origin) on 18529.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Browser, BrowserContext, Locator, Response } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { authorizationUrl, exchangeCode, getWithToken, pkcePair, registerPublicClient } from "./helpers/oauth-http.ts";
import { type RedirectListener, startRedirectListener } from "./helpers/redirect-listener.ts";
import { startStackIn, tempStateDir } from "./helpers/test-stack.ts";

const STACK_PORT = 18_520;
const CLIENT_PORT = 18_529;
/** Screenshots are the test's artifacts (gitignored; CI uploads the folder). */
const ARTIFACTS_DIR = path.join(REPO_ROOT, "test-results");
/** A client name with markup in it: the page must show it as text (stored XSS through DCR). */
const HOSTILE_CLIENT_NAME = "Test <b>Client</b>";

/**
 * SECURITY: the headers every sign-in page keeps (worker/http/security-headers.ts): no script at all, no
 * framing (RFC 9700 §4.16), nothing cached, no Referer (with its one-time handle or state) to other origins.
 */
function expectPageSecurityHeaders(headers: Record<string, string>): void {
  const csp = (headers["content-security-policy"] ?? "").split(";").map((d) => d.trim());
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp.some((d) => d.startsWith("script-src"))).toBe(false);
  expect(headers["x-frame-options"]).toBe("DENY");
  expect(headers["cache-control"]).toBe("no-store");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  // Both values keep the page's URL from other origins.
  expect(["no-referrer", "same-origin"]).toContain(headers["referrer-policy"]);
}

/** An element's text with whitespace collapsed, as a person reads it. */
async function textOf(locator: Locator): Promise<string> {
  return ((await locator.textContent()) ?? "").replace(/\s+/g, " ").trim();
}

describe("consent and mock login pages in real Chromium (issue 5)", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let stack: LocalStack | null = null;
  let listener: RedirectListener | null = null;
  let browser: Browser | null = null;
  let context: BrowserContext | null = null;
  let clientId = "";
  let redirectUri = "";

  beforeAll(async () => {
    state = await tempStateDir("browser");
    await mkdir(ARTIFACTS_DIR, { recursive: true });
    ({ stack } = await startStackIn(STACK_PORT, state.dir));
    listener = await startRedirectListener(CLIENT_PORT);
    redirectUri = `${listener.url}/callback`;
    clientId = await registerPublicClient(stack.url, HOSTILE_CLIENT_NAME, redirectUri);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await listener?.close();
    await stack?.stop();
    await state?.remove();
  });

  /** A fresh browser profile per test: cookies from one sign-in never help another. */
  async function newPage() {
    if (!browser) throw new Error("Chromium did not start");
    await context?.close();
    context = await browser.newContext();
    return context.newPage();
  }

  function newAuthorizationUrl(): URL {
    if (!stack) throw new Error("the stack did not start");
    const { challenge } = pkcePair();
    return authorizationUrl(stack.url, { clientId, redirectUri, challenge, state: "browser-test" });
  }

  it("the consent page names the client as text (escaped), where access goes and what it allows", async () => {
    const page = await newPage();
    const response = await page.goto(newAuthorizationUrl().toString());
    expect(response?.status()).toBe(200);
    expectPageSecurityHeaders((await response?.allHeaders()) ?? {});

    const heading = page.locator("h1");
    // The markup in the name is shown literally, and no <b> element was created from it.
    expect(await textOf(heading)).toContain(HOSTILE_CLIENT_NAME);
    expect(await page.locator("h1 b").count()).toBe(0);
    const body = await textOf(page.locator("body"));
    expect(body).toContain("registered itself"); // a DCR name is the client's own claim
    expect(body).toMatch(/Access will be sent to\s+127\.0\.0\.1/);
    expect(body).toContain("Access goes to an application on this computer"); // loopback redirect warning
    expect(body).toContain("can call the MCP tools your roles permit");
    expect(body).toContain(clientId);
    expect(await textOf(page.locator('button[name="decision"][value="approve"]'))).toBe("Allow");
    expect(await textOf(page.locator('button[name="decision"][value="deny"]'))).toBe("Deny");
    // The stylesheet loaded under style-src 'self' (an unstyled page would mean the CSP blocks it).
    const primary = page.locator("button.primary");
    expect(await primary.evaluate((b) => getComputedStyle(b).backgroundColor)).not.toBe("rgba(0, 0, 0, 0)");
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, "e2e-consent-page.png"), fullPage: true });
  });

  it("the mock login page offers each demo person and keeps the same security headers", async () => {
    if (!stack) throw new Error("the stack did not start");
    const page = await newPage();
    // The picker renders for any well-formed state; the state itself is checked (single use, bound to this
    // browser) when a person is picked. In a sign-in, Allow on the consent page leads here.
    const response = await page.goto(`${stack.url}/login/mock?state=${"s".repeat(32)}`);
    expect(response?.status()).toBe(200);
    expectPageSecurityHeaders((await response?.allHeaders()) ?? {});
    expect(await textOf(page.locator("h1"))).toBe("Mock login");
    for (const name of ["alice", "bob", "carol", "dave", "erin", "frank"]) {
      const form = page.locator(`form:has(input[name="identity"][value="${name}"])`);
      expect(await form.count()).toBe(1);
      expect(await textOf(form.locator('button[type="submit"]'))).toMatch(/^Sign in as /);
    }
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, "e2e-mock-login-page.png"), fullPage: true });
  });

  // Regression: Referrer-Policy no-referrer makes browsers send `Origin: null` on the consent form's post
  // (Fetch, "serializing a request origin"), which the same-origin check refused with 403.
  it("Allow, then Bob on the mock login, lands on the redirect URI with a code that /token exchanges (PKCE S256)", async () => {
    if (!stack || !listener) throw new Error("the stack did not start");
    const page = await newPage();
    const { verifier, challenge } = pkcePair();
    const url = authorizationUrl(stack.url, { clientId, redirectUri, challenge, state: "click-through" });
    await page.goto(url.toString());

    const responses: Response[] = [];
    page.on("response", (r) => responses.push(r));
    const [decision] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/authorize"),
      page.locator('button[name="decision"][value="approve"]').click(),
    ]);
    await page.waitForLoadState();
    expect(decision.status(), `POST /authorize answered: ${await textOf(page.locator("body"))}`).toBe(302);
    expect(page.url().startsWith(`${stack.url}/login/mock?`)).toBe(true);
    const login = responses.find((r) => r.url() === page.url());
    expect(login?.status()).toBe(200);
    expectPageSecurityHeaders((await login?.allHeaders()) ?? {});
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, "e2e-mock-login-after-consent.png"), fullPage: true });

    const before = listener.callbacks.length;
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(redirectUri)),
      page.locator('form:has(input[name="identity"][value="bob"]) button[type="submit"]').click(),
    ]);
    const callback = listener.callbacks[before];
    expect(callback?.get("state")).toBe("click-through");
    expect(callback?.get("iss")).toBe(stack.url); // RFC 9207
    const code = callback?.get("code");
    if (!code) throw new Error(`redirected back without a code: ${callback?.toString()}`);

    const tokens = await exchangeCode(stack.url, { clientId, redirectUri, code, verifier });
    expect(tokens.token_type.toLowerCase()).toBe("bearer");
    const whoami = await getWithToken(`${stack.url}/api/whoami`, tokens.access_token);
    expect(whoami.status).toBe(200);
    expect(whoami.body).toMatchObject({ principal: "mock:bob", provider: "mock", clientId });
  });

  describe("clickjacking: the consent page cannot be framed (RFC 9700 §4.16)", () => {
    it("Chromium refuses to show it in a frame on another origin, while a frameable page beside it loads", async () => {
      if (!stack || !listener) throw new Error("the stack did not start");
      const consentUrl = newAuthorizationUrl().toString();
      // The control frame proves the attacker page works: the same server's /health is frameable.
      listener.serve(
        "/attacker",
        `<!doctype html><title>attacker</title>
<iframe name="consent" src="${consentUrl.replaceAll("&", "&amp;")}"></iframe>
<iframe name="control" src="${stack.url}/health"></iframe>`,
      );
      const page = await newPage();
      const refusals: string[] = [];
      page.on("console", (message) => {
        if (/frame-ancestors/.test(message.text())) refusals.push(message.text());
      });
      const consentResponse = page.waitForResponse((r) => r.url() === consentUrl);
      await page.goto(`${listener.url}/attacker`);

      // The server did render the page (so the browser, not an error, is what kept it out).
      expect((await consentResponse).status()).toBe(200);
      const control = page.frame({ name: "control" });
      const consent = page.frame({ name: "consent" });
      if (!control || !consent) throw new Error("the attacker page has no frames");
      expect(await textOf(control.locator("body"))).toContain('"ok":true');
      // Chromium replaces a refused frame with its own error page: nothing of ours is in it.
      expect(consent.url()).toMatch(/^chrome-error:/);
      expect(await consent.locator("button").count()).toBe(0);
      expect(refusals.join("\n")).toContain("frame-ancestors 'none'");
    });
  });
});
