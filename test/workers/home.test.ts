import { describe, expect, it } from "vitest";
import { ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

describe("/ is a small page: what this is, the MCP URL to give a client, where to look next", () => {
  it("names the MCP endpoint and links the console and health, with the pages' security headers", async () => {
    const response = await viaDefaultExport(new Request(`${ORIGIN}/`));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const page = await response.text();
    expect(page).toContain(`<code>${ORIGIN}/mcp</code>`);
    expect(page).toContain('href="/admin"');
    expect(page).toContain('href="/health"');
  });
});
