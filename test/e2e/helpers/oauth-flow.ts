import type { OAuthClientProvider, OAuthDiscoveryState } from "@modelcontextprotocol/sdk/client/auth.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { HttpBrowser, parseForms } from "./http-browser.ts";

/** The demo people of the dev policy (policies/environments/dev.ts) that the mock login offers. */
export type DemoPerson = "alice" | "bob" | "carol" | "dave" | "erin" | "frank";

/**
 * Walks an authorization URL as a person would: our consent page (Allow), then the mock login (pick a
 * person), following every redirect, until the client's redirect URI receives the code.
 */
export async function authorizeInBrowser(
  browser: HttpBrowser,
  authorizationUrl: URL,
  person: DemoPerson,
  redirectUri: string,
  groups?: string,
): Promise<string> {
  let url = authorizationUrl.toString();
  let res = await browser.request(url);
  for (let step = 0; step < 20; step++) {
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get("location");
      if (!location) throw new Error(`redirect without Location from ${url}`);
      const next = new URL(location, url).toString();
      await res.body?.cancel();
      if (next.startsWith(redirectUri)) {
        const target = new URL(next);
        const code = target.searchParams.get("code");
        if (!code) throw new Error(`redirected back without a code: ${target.search}`);
        return code;
      }
      url = next;
      res = await browser.request(url);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${html.slice(0, 300)}`);
    const forms = parseForms(html);
    const consent = forms.find((f) => "handle" in f.fields);
    const picker = forms.find((f) => f.fields.identity === person);
    if (consent) {
      res = await browser.submit(
        url,
        consent,
        consent.buttons.find((b) => b.value === "approve"),
      );
    } else if (picker) {
      res = await browser.submit(url, picker, picker.buttons[0], groups === undefined ? {} : { groups });
    } else {
      throw new Error(`no consent or login form for ${person} at ${url}: ${html.slice(0, 300)}`);
    }
  }
  throw new Error("too many steps in the authorization flow");
}

/** An MCP SDK OAuth client provider that signs in as one demo person, in memory. */
export class DemoOAuthProvider implements OAuthClientProvider {
  readonly browser = new HttpBrowser();
  readonly redirect = "http://127.0.0.1:9/callback";
  #client: OAuthClientInformationMixed | undefined;
  #tokens: OAuthTokens | undefined;
  #verifier = "";
  #discovery: OAuthDiscoveryState | undefined;
  /** The authorization code from the last redirect, for `transport.finishAuth(code)`. */
  code: string | null = null;

  readonly person: DemoPerson;
  readonly clientName: string;

  /** Mock groups to sign in with instead of the person's own (the mock login lets you edit them). */
  readonly groups: string | undefined;

  constructor(person: DemoPerson, clientName = `e2e ${person}`, groups?: string) {
    this.person = person;
    this.clientName = clientName;
    this.groups = groups;
  }

  get redirectUrl(): string {
    return this.redirect;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirect],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    };
  }
  clientInformation() {
    return this.#client;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.#client = info;
  }
  tokens() {
    return this.#tokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.#tokens = tokens;
  }
  async redirectToAuthorization(url: URL) {
    this.code = await authorizeInBrowser(this.browser, url, this.person, this.redirect, this.groups);
  }
  saveCodeVerifier(verifier: string) {
    this.#verifier = verifier;
  }
  codeVerifier() {
    return this.#verifier;
  }
  /**
   * Kept with the verifier, as the SDK asks: SDK 2.4 then checks, when the code comes back, that the token
   * request goes to the authorization server the redirect was made for (SEP-2352's callback-leg binding).
   */
  saveDiscoveryState(state: OAuthDiscoveryState) {
    this.#discovery = state;
  }
  discoveryState() {
    return this.#discovery;
  }
}
