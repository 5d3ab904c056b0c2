import { AuthorizationError, CimdFetchError } from "@cloudflare/workers-oauth-provider";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HttpError } from "../http/errors.ts";
import { readSingleValueForm } from "../http/form.ts";
import { applyRedirectHeaders } from "../http/security-headers.ts";
import { LoginError } from "../login/index.ts";
import { checkAuthorizeQuery } from "./authorize-request.ts";
import { consentPage } from "./consent.page.ts";
import { withOriginResourceInQuery } from "./endpoint-resource.ts";
import { type AppEnv, MCP_SCOPE, type OAuthRouteDeps } from "./routes.types.ts";

/** The consent form carries a handle and a decision; a few KiB is plenty. */
const MAX_CONSENT_FORM_BYTES = 4_096;

/**
 * GET /authorize shows our consent page for a validated request; POST /authorize takes the decision.
 * SECURITY: a client registered by anyone stops here. The upstream login (and its `state`) starts only
 * after the person approves this client, in this browser (MCP security best practices, confused deputy).
 */
export function mountAuthorize(app: Hono<AppEnv>, deps: OAuthRouteDeps): void {
  app.get("/authorize", async (c) => {
    const oauth = deps.oauth(c.env);
    checkAuthorizeQuery(new URL(c.req.url));
    // `resource=<origin>/mcp` names this server too (endpoint-resource.ts): mapped before the library reads it.
    const raw = withOriginResourceInQuery(c.req.raw, deps.config.publicUrl, deps.mcpEndpointPath);
    const request = await localOnly(() => oauth.parseAuthRequest(raw));
    const details = await localOnly(() => oauth.describeConsent(request)); // before beginConsent: a failed lookup stores nothing
    const consent = await oauth.beginConsent(request);
    return consentPage(
      { details, handle: consent.handle, loginLabel: deps.login.label, tokens: deps.config.tokens },
      consent.headers,
    );
  });

  app.post(
    "/authorize",
    bodyLimit({
      maxSize: MAX_CONSENT_FORM_BYTES,
      onError: () => {
        throw new HttpError("payload_too_large", "The consent form is too large");
      },
    }),
    async (c) => {
      const oauth = deps.oauth(c.env);
      checkSameOrigin(c.req.raw, deps.config.publicUrl);
      const form = await readSingleValueForm(c.req.raw, ["handle", "decision"]);
      const handle = form.get("handle") ?? "";
      const decision = form.get("decision");

      if (decision === "deny") {
        const denied = await localOnly(() => oauth.denyConsent(c.req.raw, handle));
        return new Response(null, { status: 302, headers: applyRedirectHeaders(denied.headers, denied.redirectTo) });
      }
      if (decision !== "approve") throw new HttpError("bad_request", "Choose Allow or Deny");

      // Prepare the upstream login first: if the provider is down, the consent handle is still unused.
      const upstream = await deps.login.start().catch(toHttpError);
      // SECURITY: the request comes back from storage, bound to this browser's cookie; nothing in the
      // form (hidden fields included) can change the client, redirect URI or resource.
      const approved = await localOnly(() => oauth.approveConsent(c.req.raw, handle, { scope: [MCP_SCOPE] }));
      const { state, headers } = await oauth.beginUpstream(approved.request, {
        data: upstream.data,
        headers: approved.headers,
      });
      return new Response(null, { status: 302, headers: applyRedirectHeaders(headers, upstream.url(state)) });
    },
  );
}

/**
 * Runs a library call whose expected failures must be shown on our own page, never redirected: the
 * request may name an unvalidated redirect URI, or the consent may be expired, used, or from another browser.
 */
export async function localOnly<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    if (cause instanceof AuthorizationError) {
      // SECURITY: even when the library offers a ready-made error redirect (a validated redirect URI), we
      // render locally: a client anyone can register must not turn this server into a redirector before
      // the person has consented (RFC 9700 §4.11.2).
      throw new HttpError("bad_request", cause.description, { cause });
    }
    if (cause instanceof CimdFetchError) {
      throw new HttpError("bad_request", "This application's metadata document could not be fetched or is invalid", {
        cause,
      });
    }
    throw cause;
  }
}

/** Browsers send `Origin` on form posts; one from another site is refused (the binding cookie would be missing anyway). */
function checkSameOrigin(request: Request, publicUrl: string): void {
  const origin = request.headers.get("Origin");
  if (origin !== null && origin !== publicUrl) {
    throw new HttpError("forbidden", "This form can only be sent from this site");
  }
}

function toHttpError(cause: unknown): never {
  if (!(cause instanceof LoginError)) throw cause;
  console.warn(`login: cannot start a sign-in (${cause.reason}): ${cause.publicMessage}`);
  throw new HttpError("upstream_unavailable", "The login provider cannot be reached right now; try again shortly", {
    cause,
  });
}
