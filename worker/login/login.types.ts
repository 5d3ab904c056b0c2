import type { LoginProviderId } from "../config.ts";
import type { LoginIdentity } from "../oauth/props.ts";

/**
 * One upstream login (GitHub, an OIDC provider, Cloudflare Access, the mock). Each lives in its own file
 * and has this same small API, so replacing the OAuth client library touches one file per provider.
 *
 * The sequence, driven by oauth/consent.routes.ts and oauth/callback.routes.ts:
 *   start()                 before consent is consumed: may fetch discovery, so an outage shows an error
 *                           page while the consent page can still be retried;
 *   url(state)              the upstream authorization URL for the `state` the OAuth library created;
 *   readCallback(request)   parses our callback without side effects (bad input → 400, `state` untouched);
 *   finish(data)            after the library consumed `state`: exchanges the code, verifies, returns who.
 */
export interface UpstreamLogin {
  readonly provider: LoginProviderId;
  /** Shown on the consent page: "You will sign in with …". */
  readonly label: string;
  /** Our callback path for this provider. Each provider has its own, so a code from one can never be fed to another (mix-up). */
  readonly callbackPath: string;
  readonly callbackMethod: "GET" | "POST";
  start(): Promise<UpstreamStart>;
  readCallback(request: Request): Promise<FinishLogin>;
  /** GET pages the provider serves itself, by path (only the mock has one: its identity picker). */
  readonly pages?: Readonly<Record<string, (request: Request) => Response>>;
}

export interface UpstreamStart {
  /** Saved server-side (encrypted) by the OAuth library with the `state`, and returned at the callback. Never sent upstream. */
  readonly data: Readonly<Record<string, string>>;
  url(state: string): string;
}

/** Completes a sign-in with the data saved at start. Throws LoginError for anything the user or upstream caused. */
export type FinishLogin = (data: unknown) => Promise<LoginIdentity>;
