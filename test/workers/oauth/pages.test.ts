import { describe, expect, it } from "vitest";
import { Browser } from "./harness/browser.ts";
import { approve } from "./harness/flow.ts";
import { OAuthTestClient, ORIGIN, pkce } from "./harness/oauth-client.ts";
import { viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

/** SECURITY headers every HTML page carries (RFC 9700 §4.16 anti-framing; no script; no cache; no Referer). */
function expectPageHeaders(response: Response): void {
  const csp = response.headers.get("Content-Security-Policy") ?? "";
  expect(response.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).toContain("base-uri 'none'");
  expect(csp).not.toMatch(/script-src|unsafe-inline|unsafe-eval/);
  expect(response.headers.get("X-Frame-Options")).toBe("DENY");
  // same-origin: no Referer to other sites, and browsers still send our Origin on our own forms.
  expect(response.headers.get("Referrer-Policy")).toBe("same-origin");
  expect(response.headers.get("Cache-Control")).toBe("no-store");
  expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
}

const HOSTILE_NAME = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`;

describe("security headers on every HTML page", () => {
  it("the consent page", async () => {
    const client = await OAuthTestClient.register(send);
    const response = await new Browser(send).get(client.authorizeUrl(await pkce()));
    expect(response.status).toBe(200);
    expectPageHeaders(response);
    expect(await response.text()).not.toMatch(/<script|\sstyle=|\son\w+=/i);
  });

  it("an error page", async () => {
    const response = await new Browser(send).get(`${ORIGIN}/authorize?client_id=nobody`);
    expect(response.status).toBe(400);
    expectPageHeaders(response);
  });

  it("the mock login picker", async () => {
    const client = await OAuthTestClient.register(send);
    const browser = new Browser(send);
    const { location } = await approve(browser, client);
    const response = await browser.get(location);
    expect(response.status).toBe(200);
    expectPageHeaders(response);
  });

  it("the stylesheet the pages use is served from this origin (style-src 'self')", async () => {
    const response = await send(new Request(`${ORIGIN}/static/hatago.css`));
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toContain("text/css");
  });
});

describe("everything from the client is escaped on the consent page (XSS; FastMCP CVE-2025-62800 class)", () => {
  it("HTML in the client name is shown as text", async () => {
    const client = await OAuthTestClient.register(send, { client_name: HOSTILE_NAME });
    const response = await new Browser(send).get(
      client.authorizeUrl(await pkce(), { state: `"><script>alert(3)</script>` }),
    );
    const page = await response.text();
    expect(response.status).toBe(200);
    expect(page).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;&amp;");
    expect(page).not.toContain("<script>");
    expect(page).not.toContain("<img");
    // The client's state is never echoed into the page.
    expect(page).not.toContain("alert(3)");
  });

  it("a client name longer than 200 characters is refused at registration", async () => {
    const response = await send(
      new Request(`${ORIGIN}/register`, {
        method: "POST",
        body: JSON.stringify({ client_name: "x".repeat(201), redirect_uris: ["https://client.example/callback"] }),
        headers: { "Content-Type": "application/json" },
      }),
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: "invalid_client_metadata" });
  });

  it("registration refuses dangerous redirect URIs (javascript:, fragments) and non-JSON bodies", async () => {
    for (const uri of ["javascript:alert(1)", "https://client.example/cb#x", "https://user@client.example/cb"]) {
      const response = await send(
        new Request(`${ORIGIN}/register`, {
          method: "POST",
          body: JSON.stringify({ client_name: "x", redirect_uris: [uri] }),
          headers: { "Content-Type": "application/json" },
        }),
      );
      expect(response.status, uri).toBe(400);
    }
    const form = await send(
      new Request(`${ORIGIN}/register`, {
        method: "POST",
        body: "client_name=x&redirect_uris=https://client.example/cb",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
      }),
    );
    expect(form.status).toBe(400);
  });
});
