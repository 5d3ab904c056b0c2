import { expect } from "vitest";
import { Browser, formFields } from "./browser.ts";
import { type OAuthTestClient, ORIGIN, type Pkce, pkce, type Send, type TokenResponse } from "./oauth-client.ts";

/** Turns the upstream redirect (where our consent POST sent the browser) into our callback request. */
export type UpstreamStep = (browser: Browser, location: string) => Promise<Response>;

export interface SignedIn {
  readonly code: string;
  readonly pkce: Pkce;
  readonly callback: URL;
}

/** authorize → consent page → Allow. Returns where our server sent the browser (the upstream login). */
export async function approve(
  browser: Browser,
  client: OAuthTestClient,
  p?: Pkce,
): Promise<{ location: string; pkce: Pkce }> {
  const challenge = p ?? (await pkce());
  const consent = await browser.get(client.authorizeUrl(challenge));
  expect(consent.status, "consent page").toBe(200);
  const { fields } = formFields(await consent.text());
  const approved = await browser.postForm(
    `${client.origin}/authorize`,
    { handle: fields.handle ?? "", decision: "approve" },
    { Origin: client.origin },
  );
  expect(approved.status, "consent approval redirects upstream").toBe(302);
  return { location: approved.headers.get("Location") ?? "", pkce: challenge };
}

/** The redirect back to the MCP client: checks it goes to the registered URI with `state` and `iss` (RFC 9207). */
export function clientRedirect(response: Response, client: OAuthTestClient): URL {
  expect(response.status, "redirect to the client").toBe(302);
  const back = new URL(response.headers.get("Location") ?? "");
  expect(back.origin + back.pathname).toBe(client.redirectUri);
  expect(back.searchParams.get("state")).toBe("client-state-123");
  expect(back.searchParams.get("iss")).toBe(client.origin);
  return back;
}

/**
 * authorize → consent page → Allow → upstream → our callback → redirect to the client with a code.
 * Asserts each hop's status, so a broken step fails where it breaks.
 */
export async function signIn(browser: Browser, client: OAuthTestClient, upstream: UpstreamStep): Promise<SignedIn> {
  const { location, pkce: p } = await approve(browser, client);
  const back = clientRedirect(await upstream(browser, location), client);
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`no code in ${back}`);
  return { code, pkce: p, callback: back };
}

/** The mock provider's upstream step: open the picker, submit one person's form. */
export function mockUpstream(person: string, groups?: string): UpstreamStep {
  return async (browser, location) => {
    const picker = await browser.get(location);
    expect(picker.status, "mock picker").toBe(200);
    const page = await picker.text();
    const action = page.match(/<form[^>]*action="([^"]*)"/)?.[1]?.replaceAll("&amp;", "&") ?? "";
    const defaults = page.match(new RegExp(`value="${person}">[\\s\\S]*?name="groups" value="([^"]*)"`))?.[1] ?? "";
    return browser.postForm(`${ORIGIN}${action}`, { identity: person, groups: groups ?? defaults }, { Origin: ORIGIN });
  };
}

export async function tokens(response: Response): Promise<TokenResponse> {
  expect(response.status, "token endpoint").toBe(200);
  return (await response.json()) as TokenResponse;
}

export function newBrowser(send: Send): Browser {
  return new Browser(send);
}
