import type { OAuthProviderOptions } from "@cloudflare/workers-oauth-provider";
import type { Config } from "../config.ts";
import type { Env } from "../env.ts";
import { MCP_SCOPE } from "./routes.types.ts";
import { checkStandingAtTokenEndpoint } from "./token-standing.ts";

/** A client's self-chosen name is shown on the consent page; a long one is a layout attack, not a name. */
const MAX_CLIENT_NAME_CHARS = 200;
/** Real MCP clients register one to a handful of redirect URIs. */
const MAX_REDIRECT_URIS = 10;

export const AUTHORIZE_PATH = "/authorize";
export const TOKEN_PATH = "/token";
export const REGISTER_PATH = "/register";

type Handlers = Pick<OAuthProviderOptions<Env>, "apiHandlers" | "defaultHandler">;

/**
 * workers-oauth-provider does the protocol: metadata (RFC 8414, RFC 9728), registration (RFC 7591) and
 * Client ID Metadata Documents, PKCE S256 only, exact redirect URI matching, tokens bound to this one
 * resource (RFC 8707), refresh token rotation, revocation (RFC 7009), all stored hashed or encrypted.
 * We choose its settings, and add what it leaves open: the standing check on every token it issues
 * (token-standing.ts) and, in front of its token endpoint, refresh token reuse detection and single-use
 * codes (token-guard.ts).
 */
export function providerOptions(config: Config, handlers: Handlers): OAuthProviderOptions<Env> {
  const origin = config.publicUrl;
  return {
    ...handlers,
    // Absolute endpoints pin the issuer to the configured origin, whatever host a request arrived on.
    authorizeEndpoint: `${origin}${AUTHORIZE_PATH}`,
    tokenEndpoint: `${origin}${TOKEN_PATH}`,
    clientRegistrationEndpoint: `${origin}${REGISTER_PATH}`,
    scopesSupported: [MCP_SCOPE],
    requiredScopes: [MCP_SCOPE],
    // The audience of every token is the origin: it covers /api/, /mcp and /sse alike.
    resourceMetadata: {
      resource: origin,
      authorization_servers: [origin],
      bearer_methods_supported: ["header"],
      resource_name: "Hatago Auth MCP gateway",
    },
    accessTokenTTL: config.tokens.accessTokenTtlSeconds,
    refreshTokenTTL: config.tokens.refreshTokenTtlSeconds,
    clientRegistrationTTL: config.tokens.clientRegistrationTtlSeconds,
    // SECURITY: CIMD fetches a URL the client chose; the library validates it and the document, and the
    // global_fetch_strictly_public compatibility flag (wrangler.jsonc) keeps the fetch on the public internet.
    clientIdMetadataDocumentEnabled: true,
    allowPrivateUseRedirectUris: false,
    clientRegistrationCallback: ({ clientMetadata }) => {
      const name = clientMetadata.client_name;
      if (typeof name === "string" && name.length > MAX_CLIENT_NAME_CHARS) {
        return { description: `client_name must be at most ${MAX_CLIENT_NAME_CHARS} characters` };
      }
      const uris = clientMetadata.redirect_uris;
      if (Array.isArray(uris) && uris.length > MAX_REDIRECT_URIS) {
        return { description: `at most ${MAX_REDIRECT_URIS} redirect_uris` };
      }
    },
    // SECURITY: no token for a blocked person or a revoked sign-in, at code redemption and at every
    // refresh; a refusal revokes the grant (token-standing.ts).
    tokenExchangeCallback: checkStandingAtTokenEndpoint,
    onError: ({ status, code, internal }) => {
      // The wire answer stays generic (RFC 6749 §5.2); the log says which check failed.
      console.warn(`oauth: ${status} ${code} (${internal.category}/${internal.reason})`);
    },
  };
}
