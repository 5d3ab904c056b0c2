import { Hono } from "hono";
import { z } from "zod";
import type { Env } from "../env.ts";
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
  api.get("/api/whoami", (c) => {
    const props = AuthProps.safeParse(c.executionCtx.props);
    const auth = TokenAuth.safeParse(Reflect.get(c.executionCtx, "auth"));
    if (!props.success || !auth.success) {
      // A grant written by another version of this Worker: its holder must sign in again.
      return c.json({ error: "invalid_token", error_description: "Sign in again" }, 401, {
        "WWW-Authenticate": 'Bearer error="invalid_token"',
        "Cache-Control": "no-store",
      });
    }
    const p = props.data;
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
