import { env } from "cloudflare:test";
import { expect } from "vitest";
import { compilePolicy, POLICIES } from "../../../policies/index.ts";
import { shipAuditRows } from "../audit/ledgers.ts";
import { Browser, decodeEntities } from "../oauth/harness/browser.ts";
import { mockUpstream } from "../oauth/harness/flow.ts";
import { ORIGIN, type Send } from "../oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "../oauth/harness/workers.ts";

export const send: Send = viaDefaultExport;
export const CONSOLE = `${ORIGIN}/admin/console`;

export async function seedDevPolicy(): Promise<void> {
  await env.DB.batch((await compilePolicy(POLICIES.dev)).statements.map((s) => env.DB.prepare(s)));
}

/**
 * A console sign-in as a browser walks it: the console's sign-in link, the mock login's picker, our shared
 * login callback, then the console's own callback. Returns the console callback's answer (303 to /admin
 * for an admin, a 403 page for anyone else).
 */
export async function consoleSignIn(browser: Browser, person: string, groups?: string): Promise<Response> {
  const start = await browser.get(`${CONSOLE}/sign-in`);
  expect(start.status, "the sign-in link sends the browser to the login").toBe(302);
  const login = await mockUpstream(person, groups)(browser, start.headers.get("Location") ?? "");
  expect(login.status, "the login callback sends the browser to the console's callback").toBe(302);
  const location = login.headers.get("Location") ?? "";
  expect(location.startsWith(`${CONSOLE}/callback?`), location).toBe(true);
  return browser.get(location);
}

/** A browser with an admin's console session (alice, in the dev policy). */
export async function adminBrowser(person = "alice", via: Send = send): Promise<Browser> {
  const browser = new Browser(via);
  const answer = await consoleSignIn(browser, person);
  expect(answer.status, "admin sign-in").toBe(303);
  return browser;
}

/** The CSRF token on a console page (every page's sign-out form carries it). */
export function csrfOf(page: string): string {
  const value = page.match(/name="csrf" value="([^"]*)"/)?.[1];
  if (!value) throw new Error("no CSRF field on the page");
  return decodeEntities(value);
}

export async function pageOf(
  browser: Browser,
  url: string,
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await browser.get(url);
  return { status: response.status, text: await response.text(), headers: response.headers };
}

/** Every console form post as a browser sends it: same-origin, form-encoded. */
export function postForm(browser: Browser, url: string, fields: Record<string, string>, origin = ORIGIN) {
  return browser.postForm(url, fields, {
    Origin: origin,
    "Sec-Fetch-Site": origin === ORIGIN ? "same-origin" : "cross-site",
  });
}

export async function auditRows(action: string): Promise<Record<string, unknown>[]> {
  await shipAuditRows();
  const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE action = ? ORDER BY id").bind(action).all();
  return results;
}

/** A page's text with tags removed, entities decoded and whitespace collapsed, as a person reads it. */
export const readable = (page: string) => decodeEntities(page.replace(/<[^>]+>/g, " ")).replace(/\s+/g, " ");
