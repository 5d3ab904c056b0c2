import type { ConnectProviderConfig } from "../config.ts";
import { mockExchange, mockRefresh } from "./mock-upstream.ts";
import type { TokenSet } from "./token-seal.ts";
import { authorizationUrl, exchangeCode, refreshTokens } from "./upstream-client.ts";

/** One provider's three steps, whatever it is (arctic for real ones, in-process for the mock). */
export interface ProviderClient {
  authorizationUrl(state: string, verifier: string, scopes: readonly string[]): string;
  exchange(code: string, verifier: string, scopes: readonly string[]): Promise<TokenSet>;
  refresh(current: TokenSet): Promise<TokenSet>;
}

/** Our callback for a provider: registered with it, compared exactly by it. */
export function connectCallbackUrl(publicUrl: string, provider: string): string {
  return `${publicUrl}/connect/${provider}/callback`;
}

export function providerClient(provider: ConnectProviderConfig, publicUrl: string, kv: KVNamespace): ProviderClient {
  const redirectUri = connectCallbackUrl(publicUrl, provider.id);
  if (provider.kind === "mock") {
    return {
      authorizationUrl(state, verifier, scopes) {
        return authorizationUrl(provider, redirectUri, { state, verifier, scopes });
      },
      exchange: (code, verifier) => mockExchange(kv, provider.id, code, verifier, redirectUri),
      refresh: (current) => mockRefresh(kv, provider.id, current),
    };
  }
  return {
    authorizationUrl: (state, verifier, scopes) => authorizationUrl(provider, redirectUri, { state, verifier, scopes }),
    exchange: (code, verifier, scopes) => exchangeCode(provider, redirectUri, code, verifier, scopes),
    refresh: (current) => refreshTokens(provider, redirectUri, current),
  };
}
