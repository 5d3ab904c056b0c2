import { createHash, randomBytes } from "node:crypto";
import { z } from "zod";

/** The parts of an RFC 7591 registration response the tests use. */
const Registration = z.object({ client_id: z.string().min(1) });
/** OAuth 2.1 §3.2.3 token response. */
const TokenResponse = z.object({
  access_token: z.string().min(1),
  token_type: z.string(),
  expires_in: z.number().optional(),
  refresh_token: z.string().optional(),
  scope: z.string().optional(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** A PKCE pair (RFC 7636 §4.1–4.2): a 43-character verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** Registers a public client (token_endpoint_auth_method none) by dynamic registration (RFC 7591). */
export async function registerPublicClient(baseUrl: string, clientName: string, redirectUri: string): Promise<string> {
  const res = await fetch(`${baseUrl}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: clientName,
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
  });
  const body: unknown = await res.json();
  if (res.status !== 201) throw new Error(`/register answered ${res.status}: ${JSON.stringify(body)}`);
  return Registration.parse(body).client_id;
}

/** An authorization request URL: code flow, PKCE S256, scope `mcp`, the stack as the resource (RFC 8707). */
export function authorizationUrl(
  baseUrl: string,
  request: { clientId: string; redirectUri: string; challenge: string; state: string },
): URL {
  const url = new URL(`${baseUrl}/authorize`);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: request.clientId,
    redirect_uri: request.redirectUri,
    scope: "mcp",
    state: request.state,
    code_challenge: request.challenge,
    code_challenge_method: "S256",
    resource: baseUrl,
  }).toString();
  return url;
}

/** Exchanges an authorization code at /token with its PKCE verifier (OAuth 2.1 §4.1.3). */
export async function exchangeCode(
  baseUrl: string,
  exchange: { clientId: string; redirectUri: string; code: string; verifier: string },
): Promise<TokenResponse> {
  const res = await fetch(`${baseUrl}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: exchange.clientId,
      redirect_uri: exchange.redirectUri,
      code: exchange.code,
      code_verifier: exchange.verifier,
      resource: baseUrl,
    }),
  });
  const body: unknown = await res.json();
  if (res.status !== 200) throw new Error(`/token answered ${res.status}: ${JSON.stringify(body)}`);
  return TokenResponse.parse(body);
}

/** GET a protected JSON endpoint with a bearer token; status and parsed body. */
export async function getWithToken(url: string, accessToken: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { status: res.status, body };
}
