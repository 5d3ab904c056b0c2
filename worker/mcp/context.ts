import type { RequestContext } from "../authz/request-context.ts";

/**
 * The request's context travels to SDK handlers inside `authInfo.extra` (the SDK passes `authInfo` per
 * HTTP request), so concurrent requests in one Durable Object never share mutable state.
 */
const KEY = "hatago";

export function authInfoFor(ctx: RequestContext, token: string) {
  return { token, clientId: ctx.caller.clientId ?? "", scopes: [], extra: { [KEY]: ctx } };
}

export function contextOf(extra: { authInfo?: { extra?: Record<string, unknown> } | undefined }): RequestContext {
  const ctx = extra.authInfo?.extra?.[KEY];
  // SECURITY: a handler that runs without a context (a bug) must not run with anyone's permissions.
  if (!ctx || typeof ctx !== "object") throw new Error("MCP handler called without a request context");
  return ctx as RequestContext;
}
