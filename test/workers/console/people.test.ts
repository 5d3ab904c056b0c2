import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { adminBrowser, CONSOLE, pageOf, seedDevPolicy } from "./harness.ts";

beforeEach(seedDevPolicy);

/** A page's text with tags removed and whitespace collapsed, as a person reads it. */
const readable = (page: string) =>
  page
    .replace(/<[^>]+>/g, " ")
    .replaceAll("&quot;", '"')
    .replace(/\s+/g, " ");

describe("people and access: who can use what, at which level, and why", () => {
  it("lists every subject the policy names and every principal the audit log has seen; search by any part", async () => {
    await env.DB.prepare(
      "INSERT INTO audit_log (at_ms, principal, action, decision, reason) VALUES (?, 'github:583231', 'tools/call', 'deny', 'tool_not_granted')",
    )
      .bind(Date.now())
      .run();
    const browser = await adminBrowser();
    const all = await pageOf(browser, `${CONSOLE}/people`);
    for (const subject of ["mock:alice", "mock:bob", "email:carol@example.com", "group:mock:staff", "github:583231"]) {
      expect(all.text, subject).toContain(`<code>${subject}</code>`);
    }
    const byName = await pageOf(browser, `${CONSOLE}/people?q=engineer`); // bob's binding note: "Bob, engineer"
    expect(byName.text).toContain("<code>mock:bob</code>");
    expect(byName.text).not.toContain('href="/admin/console/people/mock%3Aalice"');
    const byEmail = await pageOf(browser, `${CONSOLE}/people?q=EXAMPLE.COM`);
    expect(byEmail.text).toContain("<code>email:carol@example.com</code>");
    const byId = await pageOf(browser, `${CONSOLE}/people?q=5832`);
    expect(byId.text).toContain("<code>github:583231</code>");
  });

  it("bob can call memory__create_entities because binding mock:bob → role writer → memory at write", async () => {
    const browser = await adminBrowser();
    const page = await pageOf(browser, `${CONSOLE}/people/${encodeURIComponent("mock:bob")}`);
    expect(page.status).toBe(200);
    const row = page.text.match(/<tr id="tool-memory__create_entities">[\s\S]*?<\/tr>/)?.[0] ?? "";
    expect(readable(row)).toContain("yes");
    expect(readable(row)).toContain("binding mock:bob → role writer → server-wide write on memory");
    expect(readable(row)).toContain('{ server: "memory", level: "write" }');
    // What he cannot use, and why: the writer grant on `everything` denies this tool.
    const denied = page.text.match(/<tr id="tool-everything__gzip-file-as-resource">[\s\S]*?<\/tr>/)?.[0] ?? "";
    expect(readable(denied)).toContain("no");
    expect(readable(denied)).toContain("no role of theirs grants it");
    expect(readable(page.text)).toContain("Rate limit: 600 calls a minute");
  });

  it("erin's access through her group is explained from her latest session's memberships", async () => {
    await env.DB.prepare(
      "INSERT INTO mcp_sessions (principal, session_id, created_ms, direct_calls, subjects) VALUES ('mock:erin', 'd-1', ?, 1, ?)",
    )
      .bind(Date.now(), JSON.stringify(["mock:erin", "group:mock:staff"]))
      .run();
    const page = await pageOf(await adminBrowser(), `${CONSOLE}/people/${encodeURIComponent("mock:erin")}`);
    const row = page.text.match(/<tr id="tool-everything__echo">[\s\S]*?<\/tr>/)?.[0] ?? "";
    expect(readable(row)).toContain("binding group:mock:staff → role researcher → this tool");
    expect(readable(row)).toContain('allow: ["echo","get-sum","simulate-research-query"]');
  });

  it("blocked subjects are marked in the list and on their page", async () => {
    await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
      .bind("mock:bob", "laptop <stolen>", "mock:alice", Date.now())
      .run();
    const browser = await adminBrowser();
    const list = await pageOf(browser, `${CONSOLE}/people?q=bob`);
    expect(list.text).toContain('<code>mock:bob</code></a> <span class="tag blocked">blocked</span>');
    const page = await pageOf(browser, `${CONSOLE}/people/${encodeURIComponent("mock:bob")}`);
    expect(page.text).toContain('<span class="tag blocked">blocked</span>');
    expect(page.text).toContain("laptop &lt;stolen&gt;");
  });
});
