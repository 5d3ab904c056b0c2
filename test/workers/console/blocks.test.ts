import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { Browser } from "../oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "../oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "../oauth/harness/oauth-client.ts";
import { adminBrowser, auditRows, CONSOLE, csrfOf, pageOf, postForm, seedDevPolicy, send } from "./harness.ts";

beforeEach(seedDevPolicy);

async function bobsToken(): Promise<string> {
  const client = await OAuthTestClient.register(send);
  const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("bob"));
  return (await tokens(await client.exchange(code, pkce.verifier))).access_token;
}

const whoami = (token: string) =>
  send(new Request(`${ORIGIN}/api/whoami`, { headers: { authorization: `Bearer ${token}` } }));

describe("block and lift from the console: a reason, a confirmation step, the same rules as the API", () => {
  it("block bob (form → confirmation → block), his token is refused, the row is audited; lift (confirm → lift)", async () => {
    const bob = await bobsToken();
    const browser = await adminBrowser();
    const csrf = csrfOf((await pageOf(browser, `${CONSOLE}/blocks`)).text);

    const confirm = await postForm(browser, `${CONSOLE}/block/confirm`, {
      csrf,
      subject: "mock:bob",
      reason: "laptop stolen",
    });
    expect(confirm.status).toBe(200);
    const confirmation = await confirm.text();
    expect(confirmation).toContain("Confirm the block");
    // Nothing happens until the confirmation's own button is pressed.
    expect((await whoami(bob)).status).toBe(200);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM blocks").first("n")).toBe(0);

    const blocked = await postForm(browser, `${CONSOLE}/block`, { csrf, subject: "mock:bob", reason: "laptop stolen" });
    expect(blocked.status).toBe(303);
    expect(blocked.headers.get("location")).toBe("/admin/console/blocks?done=blocked&subject=mock%3Abob");
    expect((await whoami(bob)).status).toBe(401);
    expect(await auditRows("admin:block")).toMatchObject([
      { principal: "mock:alice", subject: "mock:bob", decision: "allow", note: "laptop stolen" },
    ]);
    const list = await pageOf(browser, `${CONSOLE}/blocks?done=blocked&subject=mock%3Abob`);
    expect(list.text).toContain("Blocked <code>mock:bob</code>.");
    expect(list.text).toContain("<td>laptop stolen</td>");

    const lift = await postForm(browser, `${CONSOLE}/lift/confirm`, { csrf, subject: "mock:bob" });
    expect(await lift.text()).toContain("Confirm lifting the block");
    expect(await env.DB.prepare("SELECT count(*) AS n FROM blocks").first("n")).toBe(1);
    const lifted = await postForm(browser, `${CONSOLE}/lift`, { csrf, subject: "mock:bob" });
    expect(lifted.status).toBe(303);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM blocks").first("n")).toBe(0);
    expect(await auditRows("admin:unblock")).toMatchObject([{ subject: "mock:bob", decision: "allow" }]);
    // Signed in again, bob is back.
    expect((await whoami(await bobsToken())).status).toBe(200);
  });

  it("CSRF on every form: block and lift posts without the session's token are refused and change nothing", async () => {
    const browser = await adminBrowser();
    for (const path of ["/block/confirm", "/block", "/lift/confirm", "/lift", "/sign-out", "/token"]) {
      const answer = await postForm(browser, `${CONSOLE}${path}`, { subject: "mock:bob", reason: "x" });
      expect(answer.status, path).toBe(403);
    }
    expect(await env.DB.prepare("SELECT count(*) AS n FROM blocks").first("n")).toBe(0);
  });

  it("refuses a self-block and a malformed subject with the reason on the form, and asks for a reason", async () => {
    const browser = await adminBrowser();
    const csrf = csrfOf((await pageOf(browser, `${CONSOLE}/blocks`)).text);
    const self = await postForm(browser, `${CONSOLE}/block/confirm`, { csrf, subject: "mock:alice", reason: "x" });
    expect(self.status).toBe(400);
    expect(await self.text()).toContain("You cannot block yourself");
    const bad = await postForm(browser, `${CONSOLE}/block`, { csrf, subject: "bob", reason: "x" });
    expect(bad.status).toBe(400);
    const noReason = await postForm(browser, `${CONSOLE}/block/confirm`, { csrf, subject: "mock:bob", reason: " " });
    expect(await noReason.text()).toContain("Say why");
    expect(await env.DB.prepare("SELECT count(*) AS n FROM blocks").first("n")).toBe(0);
  });

  it("warns on the confirmation page when nothing has ever named the subject", async () => {
    const browser = await adminBrowser();
    const csrf = csrfOf((await pageOf(browser, `${CONSOLE}/blocks`)).text);
    const confirm = await postForm(browser, `${CONSOLE}/block/confirm`, {
      csrf,
      subject: "github:999999999",
      reason: "typo?",
    });
    expect(await confirm.text()).toContain("Nothing has ever named this subject");
  });
});
