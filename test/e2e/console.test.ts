// The admin console as an operator uses it, in real Chromium on the local stack (issue 16). Ports 18590–18599:
// the stack on 18590–18592.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { d1Query } from "./helpers/d1.ts";
import { callError, connectAs } from "./helpers/mcp-client.ts";
import { startStackIn, tempStateDir } from "./helpers/test-stack.ts";

const STACK_PORT = 18_590;
const ARTIFACTS_DIR = path.join(REPO_ROOT, "test-results");
/** A tool name a client may send: it must reach the audit page as text, never as markup. */
const HOSTILE_TOOL = `memory__<img src=x onerror="document.title='pwned'">`;

/**
 * An accessibility check equivalent to axe-core's serious rules for these pages (axe-core is not a
 * dependency here): a language, one h1 and a main landmark, a label for every form control, a name for
 * every link and button, unique ids, header cells in tables. Returns the violations found.
 */
async function accessibilityViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const problems: string[] = [];
    if (!document.documentElement.lang) problems.push("html has no lang");
    if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
    if (!document.querySelector("main")) problems.push("no main landmark");
    const named = (el: Element) =>
      (el.getAttribute("aria-label") ?? "").trim() !== "" || (el.textContent ?? "").trim() !== "";
    for (const el of Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea"))) {
      const id = el.getAttribute("id");
      const labelled =
        el.getAttribute("aria-label") ||
        el.closest("label") ||
        (id !== null && document.querySelector(`label[for="${CSS.escape(id)}"]`));
      if (!labelled) problems.push(`unlabelled ${el.tagName.toLowerCase()} ${el.getAttribute("name")}`);
    }
    for (const el of Array.from(document.querySelectorAll("a, button")))
      if (!named(el)) problems.push(`unnamed ${el.outerHTML}`);
    const ids = Array.from(document.querySelectorAll("[id]")).map((e) => e.id);
    for (const id of new Set(ids)) if (ids.filter((i) => i === id).length > 1) problems.push(`duplicate id ${id}`);
    for (const table of Array.from(document.querySelectorAll("table")))
      if (!table.querySelector("th")) problems.push("a table without header cells");
    return problems;
  });
}

/** What a person reads in an element (rendered text: table cells apart), whitespace collapsed. */
const text = async (page: Page, selector = "body") =>
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text (cells apart) is what a person reads.
  (await page.locator(selector).first().innerText()).replace(/\s+/g, " ").trim();

describe("the admin console in real Chromium (issue 16)", () => {
  let state: Awaited<ReturnType<typeof tempStateDir>>;
  let stack: LocalStack | null = null;
  let logs: string[] = [];
  let browser: Browser | null = null;
  let context: BrowserContext | null = null;

  beforeAll(async () => {
    state = await tempStateDir("console");
    await mkdir(ARTIFACTS_DIR, { recursive: true });
    ({ stack, logs } = await startStackIn(STACK_PORT, state.dir));
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await state?.remove();
  });

  async function signedInPage(person: string): Promise<Page> {
    if (!browser || !stack) throw new Error("the stack did not start");
    await context?.close();
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${stack.url}/admin`);
    await Promise.all([page.waitForURL(/\/login\/mock\?/), page.getByRole("link", { name: /^Sign in with/ }).click()]);
    // An admin lands on /admin; anyone else stays on the console's callback, with its 403 page.
    await Promise.all([
      page.waitForURL(/\/admin(\/console\/callback\?.*)?$/),
      page.locator(`form:has(input[name="identity"][value="${person}"]) button[type="submit"]`).click(),
    ]);
    return page;
  }

  it("sign in as the admin, find bob and why he can call memory__create_entities, block him, lift the block", async () => {
    if (!stack) throw new Error("the stack did not start");
    const bob = await connectAs(stack.url, "bob");
    expect(await callError(bob.client, "memory__create_entities", { entities: [] })).toBeNull();
    // A hostile tool name is refused (not found) and audited with the name as sent.
    expect(await callError(bob.client, HOSTILE_TOOL, { x: "<script>alert(1)</script>" })).not.toBeNull();

    const page = await signedInPage("alice");
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    expect(new URL(page.url()).pathname).toBe("/admin");
    expect(await text(page, "h1")).toBe("Overview");
    const cookie = (await context?.cookies())?.find((c) => c.name === "__Host-hatago-console");
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Lax", path: "/" });

    // People and access: search, open bob, read the reason.
    await page.getByRole("link", { name: "People and access" }).click();
    await page.getByLabel("Name, principal, email or group").fill("bob");
    await Promise.all([page.waitForURL(/people\?q=bob/), page.getByRole("button", { name: "Search" }).click()]);
    await Promise.all([page.waitForURL(/people\/mock%3Abob/), page.getByRole("link", { name: "mock:bob" }).click()]);
    const row = await text(page, "#tool-memory__create_entities");
    expect(row).toContain("yes");
    expect(row).toContain("binding mock:bob → role writer → server-wide write on memory");
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, "e2e-console-person.png"), fullPage: true });

    // Block him: the form, then the confirmation, then the block.
    await page.getByRole("button", { name: "Block…" }).click();
    await page.getByLabel("Reason").fill("laptop <stolen>");
    await page.getByRole("button", { name: "Block…" }).click();
    expect(await text(page, "h1")).toBe("Confirm the block");
    await page.getByRole("button", { name: "Block mock:bob" }).click();
    expect(await text(page, "[role=status]")).toBe("Blocked mock:bob.");
    expect(await text(page, "table")).toContain("laptop <stolen>");

    // His next call is refused.
    expect(await callError(bob.client, "memory__read_graph")).not.toBeNull();

    // The audit log shows the block and his refused hostile call, as text.
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByLabel("Person").fill("bob");
    await page.getByRole("button", { name: "Filter" }).click();
    expect(await text(page, "main")).toContain("Showing mock:bob for “bob”");
    await page.getByLabel("Person").fill("");
    await page.getByRole("button", { name: "Filter" }).click();
    const audit = await text(page, "table");
    expect(audit).toContain("admin:block");
    expect(audit).toContain(`<img src=x onerror="document.title='pwned'">`);
    expect(await page.locator("main img").count()).toBe(0);
    // The chart: one server-rendered SVG per server with calls in the window.
    expect(await page.locator('svg.chart[aria-label^="memory:"]').count()).toBe(1);
    expect(await page.title()).not.toBe("pwned");
    // Times became the browser's local time (the script ran under the CSP).
    const first = page.locator("td time").first();
    expect(await first.getAttribute("title")).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, "e2e-console-audit.png"), fullPage: true });

    // CSV export of the same view.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Export these rows as CSV" }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^hatago-audit-.*\.csv$/);

    // Lift the block (confirmed), and bob is back after signing in again.
    await page.getByRole("link", { name: "Blocks" }).click();
    await page.getByRole("button", { name: "Lift the block on mock:bob" }).click();
    expect(await text(page, "h1")).toBe("Confirm lifting the block");
    await page.getByRole("button", { name: "Lift the block" }).click();
    expect(await text(page, "[role=status]")).toBe("Lifted the block on mock:bob.");
    const again = await connectAs(stack.url, "bob");
    expect(await callError(again.client, "memory__read_graph")).toBeNull();
    await again.client.close();
    await bob.client.close().catch(() => {});
    expect(dialogs).toEqual([]);

    // The terminal showed each call as it happened (worker/audit/audit-line.ts through wrangler's output).
    const lines = logs.filter((l) => l.startsWith("[worker]"));
    expect(lines.some((l) => / call .* mock:bob .*tools\/call memory__create_entities allow ok \d+ms/.test(l))).toBe(
      true,
    );
    expect(lines.some((l) => l.includes("admin:block") && l.includes("subject=mock:bob"))).toBe(true);
  });

  it("the health view shows the bridge's processes, D1, KV, the policy and the login provider", async () => {
    const page = await signedInPage("alice");
    await page.getByRole("link", { name: "Health", exact: true }).click();
    const body = await text(page, "main");
    expect(body).toContain("Every part answers.");
    // The policy row names the hash `npm start` seeded (the Worker does not compile policies/ itself).
    const [seeded] = await d1Query(state.dir, "SELECT value FROM policy_meta WHERE key = 'hash'");
    const hash = String(seeded?.value ?? "").slice(0, 12);
    expect(body).toContain(`policy up "dev" ${hash} is seeded`);
    expect(body).toContain("memory#");
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, "e2e-console-health.png"), fullPage: true });
  });

  it("non-admin 403: bob signing in to the console gets a plain 403 page", async () => {
    const page = await signedInPage("bob");
    expect(await text(page, "h1")).toBe("Forbidden");
    expect(await text(page, "main")).toContain("does not have the admin level");
    expect((await context?.cookies())?.some((c) => c.name === "__Host-hatago-console")).toBe(false);
  });

  it("keyboard and labels: every console page passes the accessibility check; Tab reaches the skip link first", async () => {
    const page = await signedInPage("alice");
    const base = stack?.url ?? "";
    for (const p of [
      "/admin",
      "/admin/console/people",
      "/admin/console/people/mock%3Abob",
      "/admin/console/audit",
      "/admin/console/blocks",
      "/admin/console/health",
      "/admin/console/token",
    ]) {
      await page.goto(`${base}${p}`);
      expect(await accessibilityViolations(page), p).toEqual([]);
    }
    await page.goto(`${base}/admin`);
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
  });
});
