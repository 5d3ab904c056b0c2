import { Hono } from "hono";
import { z } from "zod";
import { judgeStanding, loadStanding } from "../authz/standing.ts";
import { database } from "../db/database.ts";
import type { Env } from "../env.ts";
import { unauthorizedResponse } from "../http/bearer.ts";
import { AuthProps, subjectsOf } from "./props.ts";

/** What the OAuth library verified about the bearer token (`ctx.auth`), narrowed to what we show. */
const TokenAuth = z.object({
  clientId: z.string().optional(),
  scope: z.array(z.string()),
  expiresAt: z.number().optional(),
});

/**
 * Protected API (`/api/…`): reached only with a valid access token for this server (the OAuth library
 * checks it, its audience and expiry first). `GET /api/whoami` tells a person or a test who the token
 * is for and which binding subjects the policy will see.
 */
export function apiApp(): Hono<{ Bindings: Env }> {
  const api = new Hono<{ Bindings: Env }>();
  api.get("/api/whoami", async (c) => {
    const props = AuthProps.safeParse(c.executionCtx.props);
    const auth = TokenAuth.safeParse(Reflect.get(c.executionCtx, "auth"));
    if (!props.success || !auth.success) {
      // A grant written by another version of this Worker: its holder must sign in again.
      return unauthorizedResponse(c.req.url, "Sign in again");
    }
    const p = props.data;
    // SECURITY: a blocked or revoked person's token answers nothing here either (fail closed on D1 errors).
    let verdict: ReturnType<typeof judgeStanding>;
    try {
      verdict = judgeStanding(await loadStanding(database(c.env.DB), subjectsOf(p)), p.authenticatedAtMs);
    } catch (cause) {
      console.error(JSON.stringify({ event: "standing_read_failed", path: "/api/whoami", error: String(cause) }));
      return c.json(
        { error: "temporarily_unavailable", error_description: "Try again shortly." },
        { status: 503, headers: { "Retry-After": "5", "Cache-Control": "no-store" } },
      );
    }
    if (!verdict.ok) return unauthorizedResponse(c.req.url, verdict.publicMessage);
    return c.json(
      {
        principal: p.principal,
        displayName: p.displayName,
        provider: p.provider,
        email: p.email,
        groups: p.groups,
        subjects: subjectsOf(p),
        authenticatedAtMs: p.authenticatedAtMs,
        clientId: auth.data.clientId ?? null,
        scope: auth.data.scope,
        expiresAt: auth.data.expiresAt ?? null,
      },
      200,
      { "Cache-Control": "no-store" },
    );
  });
  api.all("*", (c) => c.json({ error: "not_found" }, 404));
  return api;
}
