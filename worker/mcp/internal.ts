import { z } from "zod";
import type { Caller } from "../authz/request-context.ts";

/**
 * What the Worker tells the session Durable Object about a request, in one header. The Durable Object is
 * reachable only through its binding, and the Worker always overwrites this header, so a client cannot
 * set it. It is still parsed with a schema: a malformed value is a bug, and the request is refused.
 */
export const INTERNAL_HEADER = "hatago-internal";

export const InternalRoute = z.enum(["mcp", "sse-open", "sse-message"]);
export type InternalRoute = z.infer<typeof InternalRoute>;

const InternalInfo = z.strictObject({
  route: InternalRoute,
  sessionId: z.string().regex(/^[\x21-\x7e]{1,128}$/),
  /** The Worker minted this session id (the request carried none): only an initialize may use it. */
  fresh: z.boolean(),
  caller: z.strictObject({
    principal: z.string().min(1),
    subjects: z.array(z.string()).max(80),
    clientId: z.string().nullable(),
    authenticatedAtMs: z.number().int().nonnegative(),
  }),
});
export type InternalInfo = z.infer<typeof InternalInfo> & { readonly caller: Caller };

export function encodeInternal(info: InternalInfo): string {
  return JSON.stringify(info);
}

export function decodeInternal(value: string | null): InternalInfo | null {
  if (!value) return null;
  try {
    const parsed = InternalInfo.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The Durable Object that holds a session: one per (principal, session id). */
export function sessionObjectName(principal: string, sessionId: string): string {
  // SECURITY: the principal is part of the name, so another principal presenting this session id
  // reaches a different, empty object and gets 404: sessions are bound to who created them.
  return `session\u0000${principal}\u0000${sessionId}`;
}
