import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { type AuditFilter, auditPage, filtered } from "../../../worker/db/audit-log.repository.ts";
import { database } from "../../../worker/db/database.ts";
import { ORIGIN } from "../oauth/harness/oauth-client.ts";
import { adminBrowser, CONSOLE, pageOf, seedDevPolicy, send } from "./harness.ts";

beforeEach(seedDevPolicy);

const HOSTILE_TOOL = `<img src=x onerror="alert(1)">`;
const HOSTILE_NOTE = `"><script>alert(2)</script>`;
const T0 = Date.UTC(2026, 10, 5, 12, 0, 0); // 2026-11-05 12:00:00 UTC = 21:00 in Tokyo

interface Row {
  principal: string;
  server?: string | null;
  tool?: string | null;
  decision?: "allow" | "deny";
  reason?: string;
  outcome?: string | null;
  at?: number;
  note?: string | null;
}

async function insertRows(rows: Row[]): Promise<void> {
  await env.DB.batch(
    rows.map((r, i) =>
      env.DB.prepare(
        "INSERT INTO audit_log (at_ms, principal, action, server, tool, decision, reason, outcome, duration_ms, note) VALUES (?, ?, 'tools/call', ?, ?, ?, ?, ?, 3, ?)",
      ).bind(
        r.at ?? T0 + i,
        r.principal,
        r.server === undefined ? "memory" : r.server,
        r.tool === undefined ? "read_graph" : r.tool,
        r.decision ?? "allow",
        r.reason ?? "granted",
        r.outcome === undefined ? "ok" : r.outcome,
        r.note ?? null,
      ),
    ),
  );
}

describe("audit view: filters, keyset paging, local time, escaping", () => {
  it("escaping: hostile tool names and notes in the audit log render as text", async () => {
    await insertRows([{ principal: "mock:bob", tool: HOSTILE_TOOL, note: HOSTILE_NOTE }]);
    const browser = await adminBrowser();
    const page = await pageOf(browser, `${CONSOLE}/audit`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(HOSTILE_TOOL);
    expect(page.text).not.toContain("<script>alert(2)");
    expect(page.text).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
    expect(page.text).toContain("&lt;script&gt;alert(2)&lt;/script&gt;");
  });

  it("a person typed as part of a name (`bob`) is resolved to the principal (`mock:bob`) and said so", async () => {
    await insertRows([{ principal: "mock:bob" }, { principal: "mock:carol-like" }]);
    const browser = await adminBrowser();
    const page = await pageOf(browser, `${CONSOLE}/audit?person=bob`);
    expect(page.text).toContain("Showing <code>mock:bob</code>");
    expect(page.text).toContain("1 rows, newest first");
    expect(page.text).not.toContain("mock:carol-like</code>");
  });

  it("filters by server, tool (as the client names it), decision, outcome and time range in a zone", async () => {
    await insertRows([
      { principal: "mock:bob", server: "memory", tool: "create_entities", at: T0 },
      { principal: "mock:bob", server: "everything", tool: "echo", at: T0 + 1 },
      { principal: "mock:dave", decision: "deny", reason: "tool_not_granted", outcome: null, at: T0 + 2 },
      { principal: "mock:bob", outcome: "tool_error", at: T0 + 3 },
      { principal: "mock:bob", at: T0 + 3_600_000 },
    ]);
    const browser = await adminBrowser();
    const count = async (query: string) => {
      const page = await pageOf(browser, `${CONSOLE}/audit?${query}`);
      expect(page.status, query).toBe(200);
      return Number(page.text.match(/(\d+) rows, newest first/)?.[1] ?? 0);
    };
    expect(await count("server=everything")).toBe(1);
    expect(await count("tool=memory__create_entities")).toBe(1);
    expect(await count("decision=deny")).toBe(1);
    expect(await count("outcome=none&person=mock:dave")).toBe(1);
    expect(await count("outcome=tool_error")).toBe(1);
    // 21:00 to 21:30 in Tokyo is 12:00 to 12:30 UTC: the first four rows, not the one an hour later.
    expect(await count("from=2026-11-05T21:00&to=2026-11-05T21:30&tz=Asia/Tokyo&server=memory")).toBe(3);
  });

  it("times are <time datetime> elements in ISO, shown in UTC until the browser's script makes them local", async () => {
    await insertRows([{ principal: "mock:bob", at: T0 }]);
    const page = await pageOf(await adminBrowser(), `${CONSOLE}/audit?person=mock:bob`);
    expect(page.text).toContain('<time datetime="2026-11-05T12:00:00.000Z">2026-11-05 12:00:00 UTC</time>');
    expect(page.text).toContain('<script src="/static/console.js" defer></script>');
    const script = await send(new Request(`${ORIGIN}/static/console.js`));
    expect(script.headers.get("content-type")).toContain("text/javascript");
    expect(await script.text()).toContain("time[datetime]");
  });

  it("pages newest first by keyset, with no row lost or repeated across pages (rows sharing a millisecond too)", async () => {
    // 120 rows, in pairs that share a millisecond.
    await insertRows(Array.from({ length: 120 }, (_, i) => ({ principal: "mock:bob", at: T0 + Math.floor(i / 2) })));
    const browser = await adminBrowser();
    const seen: string[] = [];
    let url: string | null = `${CONSOLE}/audit?person=mock:bob`;
    let pages = 0;
    while (url) {
      const page = await pageOf(browser, url);
      seen.push(...[...page.text.matchAll(/<td><time datetime="([^"]+)"/g)].map((m) => m[1] ?? ""));
      const next = page.text.match(/<a href="([^"]+)" rel="next">/)?.[1];
      url = next ? `${ORIGIN}${next.replaceAll("&amp;", "&")}` : null;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toHaveLength(120);
    const sorted = [...seen].sort().reverse();
    expect(seen).toEqual(sorted);
  });
});

describe("an index per filter: no page of the audit log scans the table or sorts it", () => {
  const filters: Record<string, AuditFilter> = {
    none: {},
    person: { principal: "mock:bob" },
    server: { server: "memory" },
    tool: { tool: "echo" },
    decision: { decision: "deny" },
    outcome: { outcome: "none" },
    "time range": { fromMs: T0, toMs: T0 + 1000 },
    "person and time range": { principal: "mock:bob", fromMs: T0, toMs: T0 + 1000 },
  };
  for (const [name, filter] of Object.entries(filters)) {
    it(`${name}: the query plan is an index range in page order`, async () => {
      const db = database(env.DB);
      const query = filtered(db.selectFrom("audit_log").selectAll(), filter)
        .where("at_ms", "<=", T0)
        .where((eb) => eb.or([eb("at_ms", "<", T0), eb("id", "<", 10)]))
        .orderBy("at_ms", "desc")
        .orderBy("id", "desc")
        .limit(51)
        .compile();
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
        .bind(...(query.parameters as unknown[]))
        .all<{ detail: string }>();
      const plan = results.map((r) => r.detail).join("\n");
      expect(plan, plan).toMatch(/USING INDEX audit_log_/);
      expect(plan, plan).not.toMatch(/TEMP B-TREE/);
      // And the same query through the module pages without error.
      await auditPage(db, filter, null, 50);
    });
  }
});

describe("CSV export", () => {
  it("exports the filtered rows with ISO times, RFC 4180 quoting and formula cells neutralised", async () => {
    await insertRows([
      { principal: "mock:bob", tool: '=HYPERLINK("http://evil.example")', at: T0 },
      { principal: "mock:bob", note: 'a, "quoted"\nnote', at: T0 + 1 },
      { principal: "mock:dave", at: T0 + 2 },
    ]);
    const browser = await adminBrowser();
    const response = await browser.get(`${CONSOLE}/audit.csv?person=mock:bob`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(response.headers.get("content-disposition")).toMatch(/^attachment; filename="hatago-audit-/);
    const text = await response.text();
    const lines = text.split("\r\n");
    expect(lines[0]).toBe(
      "id,time,principal,client_id,session_id,action,server,tool,decision,reason,outcome,error_code,duration_ms,args_digest,policy_hash,subject,note,delivery,result,stream,seq,hash",
    );
    expect(text).toContain(",2026-11-05T12:00:00.000Z,mock:bob,");
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"")"`);
    expect(text).toContain(`"a, ""quoted""\nnote"`);
    expect(text).not.toContain("mock:dave");
  });
});

describe("the chart: calls, denials and errors over time per server (server-rendered SVG)", () => {
  it("buckets the window's rows per server, with a summary for screen readers and escaped labels", async () => {
    const now = Date.now();
    await insertRows([
      { principal: "mock:bob", server: "memory", at: now - 3_600_000 * 5 },
      { principal: "mock:bob", server: "memory", at: now - 3_600_000 * 5 + 10 },
      {
        principal: "mock:dave",
        server: "memory",
        decision: "deny",
        reason: "tool_not_granted",
        outcome: null,
        at: now - 60_000,
      },
      { principal: "mock:bob", server: "everything", outcome: "tool_error", at: now - 60_000 },
      { principal: "mock:bob", server: "everything", at: now - 3_600_000 * 30 }, // outside the last day
    ]);
    const page = await pageOf(await adminBrowser(), `${CONSOLE}/audit`);
    expect(page.text, page.text.match(/<figure>[\s\S]*?<\/figcaption>/g)?.join("\n")).toContain(
      'aria-label="memory: 2 calls, 1 denials, 0 errors"',
    );
    expect(page.text).toContain('aria-label="everything: 1 calls, 0 denials, 1 errors"');
    expect(page.text.match(/<rect class="calls"[^>]*><title>[^<]*: 2 calls<\/title>/g)).toHaveLength(1);
    expect(page.text.match(/<script/g)).toHaveLength(1); // the console's own script, nothing else
  });
});
