import type { ConnectProviderConfig } from "../config.ts";
import { EndpointsDocument, IssuerDocumentCache } from "../login/discovery.ts";
import { LoginError } from "../login/errors.ts";
import { mockExchange, mockRefresh } from "./mock-upstream.ts";
import type { TokenSet } from "./token-seal.ts";
import { authorizationUrl, ConnectUpstreamError, exchangeCode, refreshTokens } from "./upstream-client.ts";

/** One provider's three steps, whatever it is (arctic for real ones, in-process for the mock). */
export interface ProviderClient {
  authorizationUrl(state: string, verifier: string, scopes: readonly string[]): Promise<string>;
  exchange(code: string, verifier: string, scopes: readonly string[]): Promise<TokenSet>;
  refresh(current: TokenSet): Promise<TokenSet>;
}

/** Our callback for a provider: registered with it, compared exactly by it. */
export function connectCallbackUrl(publicUrl: string, provider: string): string {
  return `${publicUrl}/connect/${provider}/callback`;
}

/** Discovery documents of providers named by their issuer, per isolate (the login's cache, worker/login/). */
const discovered = new Map<string, IssuerDocumentCache<EndpointsDocument>>();

/**
 * The provider with its endpoints: as configured, or (`HATAGO_CONNECT_<ID>_ISSUER`) from the issuer's discovery
 * document, re-read hourly. A document that cannot be read or names another issuer makes the step unavailable.
 */
async function withEndpoints(provider: ConnectProviderConfig): Promise<ConnectProviderConfig> {
  if (provider.issuer === null) return provider;
  let cache = discovered.get(provider.issuer);
  if (!cache) {
    cache = new IssuerDocumentCache(provider.issuer, EndpointsDocument, `${provider.label}'s discovery document`);
    discovered.set(provider.issuer, cache);
  }
  try {
    const doc = await cache.get();
    return { ...provider, authorizationUrl: doc.authorization_endpoint, tokenUrl: doc.token_endpoint };
  } catch (cause) {
    if (!(cause instanceof LoginError)) throw cause;
    throw new ConnectUpstreamError("unavailable", cause.publicMessage, { cause });
  }
}

export function providerClient(provider: ConnectProviderConfig, publicUrl: string, kv: KVNamespace): ProviderClient {
  const redirectUri = connectCallbackUrl(publicUrl, provider.id);
  if (provider.kind === "mock") {
    return {
      authorizationUrl: async (state, verifier, scopes) =>
        authorizationUrl(provider, redirectUri, { state, verifier, scopes }),
      exchange: (code, verifier) => mockExchange(kv, provider.id, code, verifier, redirectUri),
      refresh: (current) => mockRefresh(kv, provider.id, current),
    };
  }
  return {
    authorizationUrl: async (state, verifier, scopes) =>
      authorizationUrl(await withEndpoints(provider), redirectUri, { state, verifier, scopes }),
    exchange: async (code, verifier, scopes) =>
      exchangeCode(await withEndpoints(provider), redirectUri, code, verifier, scopes),
    refresh: async (current) => refreshTokens(await withEndpoints(provider), redirectUri, current),
  };
}
