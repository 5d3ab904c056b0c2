import {
  type AuthorizationErrorCode,
  authorizationErrorRedirect,
  CimdFetchError,
} from "@cloudflare/workers-oauth-provider";
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ZodError } from "zod";
import { writeAuditRow } from "../audit/audit.ts";
import { auditLog, type LedgerBindings } from "../audit/ledger.ts";
import { judgeStanding, loadStanding } from "../authz/standing.ts";
import { database } from "../db/database.ts";
import { HttpError } from "../http/errors.ts";
import { applyRedirectHeaders } from "../http/security-headers.ts";
import { LoginError, MAX_MOCK_FORM_BYTES } from "../login/index.ts";
import { localOnly } from "./authorize.routes.ts";
import { type AuthProps, authPropsFrom, grantUserId, subjectsOf } from "./props.ts";
import type { AppEnv, OAuthRouteDeps } from "./routes.types.ts";

const ERROR_CODE: Record<LoginError["kind"], AuthorizationErrorCode> = {
  denied: "access_denied",
  unverified: "access_denied",
  unavailable: "temporarily_unavailable",
};

/**
 * The upstream login's callback: recover the approved request from `state` (single use, bound to this
 * browser by the OAuth library's `__Host-` cookie), let the provider verify who signed in, then issue
 * our authorization code to the MCP client. Each provider has its own callback path.
 */
export function mountCallback(app: Hono<AppEnv>, deps: OAuthRouteDeps): void {
  const { login } = deps;
  const handle = (c: Context<AppEnv>) => finishSignIn(c, deps);
  if (login.callbackMethod === "GET") {
    app.get(login.callbackPath, handle);
  } else {
    const limit = bodyLimit({
      maxSize: MAX_MOCK_FORM_BYTES,
      onError: () => {
        throw new HttpError("payload_too_large", "The sign-in form is too large");
      },
    });
    app.post(login.callbackPath, limit, handle);
  }
  for (const [path, page] of Object.entries(login.pages ?? {})) app.get(path, (c) => page(c.req.raw));
}

async function finishSignIn(c: Context<AppEnv>, deps: OAuthRouteDeps): Promise<Response> {
  const oauth = deps.oauth(c.env);
  // Read (and reject bad input) before `state` is consumed, so a malformed request leaves it usable.
  const finish = await deps.login.readCallback(c.req.raw);
  const resumed = await localOnly(() => oauth.finishUpstream(c.req.raw));
  // From here the authorization request is the one parseAuthRequest() validated, restored from storage:
  // redirecting to its redirect URI (with an OAuth error if need be) is safe.
  let props: AuthProps;
  try {
    props = propsOf(await finish(resumed.data));
  } catch (cause) {
    if (!(cause instanceof LoginError)) throw cause;
    console.warn(`login: ${deps.login.provider} sign-in refused (${cause.kind}: ${cause.reason})`);
    const location = authorizationErrorRedirect(resumed.request, ERROR_CODE[cause.kind], cause.publicMessage);
    return new Response(null, { status: 302, headers: applyRedirectHeaders(resumed.headers, location) });
  }
  await refuseBlocked(c.env, props, resumed.request.clientId);
  const { redirectTo } = await localOnly(() =>
    oauth.completeAuthorization({
      request: resumed.request,
      userId: grantUserId(props.principal),
      // Grant metadata is stored unencrypted: only the provider name goes there. Props are encrypted.
      metadata: { provider: props.provider },
      scope: resumed.request.scope,
      props,
    }),
  ).catch((cause: unknown) => {
    if (cause instanceof CimdFetchError)
      throw new HttpError("bad_request", "The application could not be verified", { cause });
    throw cause;
  });
  console.info(`login: ${props.principal} signed in with ${props.provider} for client ${resumed.request.clientId}`);
  return new Response(null, { status: 302, headers: applyRedirectHeaders(resumed.headers, redirectTo) });
}

/**
 * SECURITY: a blocked person (or a blocked email or group of theirs) does not get a grant, whoever vouched
 * for them upstream. The refusal is a page of ours, not a redirect: the block is not the client's business
 * to handle, and the person needs to read it. Recorded in the audit log. D1 down → 503, never a grant.
 */
async function refuseBlocked(
  env: { readonly DB: D1Database } & LedgerBindings,
  props: AuthProps,
  clientId: string,
): Promise<void> {
  const db = database(env.DB);
  let verdict: ReturnType<typeof judgeStanding>;
  let blocked: readonly string[];
  try {
    const standing = await loadStanding(db, subjectsOf(props));
    verdict = judgeStanding(standing, Date.now());
    blocked = standing.blockedSubjects;
  } catch (cause) {
    throw new HttpError("unavailable", "Sign-in is temporarily unavailable; try again shortly.", { cause });
  }
  if (verdict.ok) return;
  console.warn(`login: ${props.principal} refused: blocked (${blocked.join(", ")})`);
  await writeAuditRow(
    auditLog(env),
    { principal: props.principal, clientId, sessionId: null, policyHash: null },
    {
      action: "login:refused",
      server: null,
      tool: null,
      decision: "deny",
      reason: "blocked",
      subject: blocked[0] ?? null,
    },
  ).catch((cause: unknown) => console.error(JSON.stringify({ event: "audit_write_failed", error: String(cause) })));
  throw new HttpError("forbidden", `${verdict.publicMessage} Ask them to lift the block before signing in again.`);
}

function propsOf(identity: Parameters<typeof authPropsFrom>[0]): AuthProps {
  try {
    return authPropsFrom(identity, Date.now());
  } catch (cause) {
    if (cause instanceof ZodError) {
      // The provider vouched for someone our subject grammar cannot name (an unusual `sub`, say).
      throw new LoginError("unverified", "This account cannot be used here", {
        reason: "identity_not_representable",
        cause,
      });
    }
    throw cause;
  }
}
