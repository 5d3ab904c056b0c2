import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { Hono } from "hono";
import { z } from "zod";
import { authorize } from "../../policies/decide.ts";
import { subjectKind } from "../../policies/subjects.ts";
import { writeAudit } from "../audit/audit.ts";
import { loadRequestContext, type RequestContext } from "../authz/request-context.ts";
import type { Config } from "../config.ts";
import { database } from "../db/database.ts";
import { GatewayError } from "../mcp/errors.ts";
import { AuthProps, grantUserId, subjectsOf } from "../oauth/props.ts";
import { ACCESS_JWT_HEADER, verifyAccessJwt } from "./access-jwt.ts";

/** Admin endpoints under this prefix. Deployments may also put a Cloudflare Access application in front. */
export const ADMIN_PATH = "/admin";
/** Rows per audit page: enough to investigate, small enough for one D1 read. */
const MAX_AUDIT_ROWS = 500;

interface AdminEnv {
  readonly DB: D1Database;
  readonly OAUTH_PROVIDER?: OAuthHelpers;
}
interface AdminVars {
  Variables: { admin: RequestContext };
  Bindings: AdminEnv;
}

const RevokeBody = z.strictObject({
  /** A principal (`github:123`, `mock:bob`, …) or a group/email subject. */
  subject: z.string().min(1).max(300),
  reason: z.string().min(1).max(500),
});

const AuditQuery = z.object({
  principal: z.string().max(300).optional(),
  decision: z.enum(["allow", "deny"]).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_ROWS).default(100),
  before: z.coerce.number().int().positive().optional(),
});

/**
 * The admin API. At run time an admin may only REDUCE access: revoke a principal's sign-ins (the kill
 * switch). Granting access happens only through the reviewed policy. Every action is audited.
 */
export function createAdminRoutes(access: Config["adminAccess"]) {
  const app = new Hono<AdminVars>().basePath(ADMIN_PATH);

  app.use("*", async (c, next) => {
    // With an Access application in front of /admin, the request must also carry its valid token.
    if (access && !(await verifyAccessJwt(c.req.header(ACCESS_JWT_HEADER) ?? null, access))) {
      return c.json(
        { error: "access_denied", error_description: "Admin endpoints need a Cloudflare Access sign-in." },
        403,
      );
    }
    const props = AuthProps.safeParse((c.executionCtx as unknown as { props?: unknown }).props);
    if (!props.success)
      return c.json({ error: "invalid_token", error_description: "The token carries no usable identity." }, 401);
    const ctx = await loadRequestContext(
      database(c.env.DB),
      {
        principal: props.data.principal,
        subjects: subjectsOf(props.data),
        clientId: null,
        authenticatedAtMs: props.data.authenticatedAtMs,
      },
      null,
    );
    // SECURITY: the same decision function as every MCP call, with the admin action.
    if (!authorize(ctx.grants, { kind: "admin" }).allow) {
      await writeAudit(database(c.env.DB), ctx, {
        action: `admin:${c.req.method} ${c.req.path}`.slice(0, 100),
        server: null,
        tool: null,
        decision: "deny",
        reason: "needs_admin",
      });
      return c.json(
        { error: "forbidden", error_description: "Admin endpoints need the admin level on every server." },
        403,
      );
    }
    c.set("admin", ctx);
    await next();
  });

  app.get("/audit", async (c) => {
    const query = AuditQuery.safeParse(c.req.query());
    if (!query.success)
      return c.json(
        {
          error: "invalid_request",
          error_description: query.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
        },
        400,
      );
    let q = database(c.env.DB).selectFrom("audit_log").selectAll().orderBy("id", "desc").limit(query.data.limit);
    if (query.data.principal) q = q.where("principal", "=", query.data.principal);
    if (query.data.decision) q = q.where("decision", "=", query.data.decision);
    if (query.data.before) q = q.where("id", "<", query.data.before);
    return c.json({ rows: await q.execute() });
  });

  app.post("/revoke", async (c) => {
    const admin = c.get("admin");
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      return c.json({ error: "invalid_request", error_description: "The body must be JSON." }, 400);
    }
    const body = RevokeBody.safeParse(raw);
    if (!body.success || subjectKind(body.data.subject) === null) {
      return c.json(
        {
          error: "invalid_request",
          error_description: "Expected {subject, reason} with a principal, email or group subject.",
        },
        400,
      );
    }
    const now = Date.now();
    const db = database(c.env.DB);
    // The cut-off stops every token of sign-ins before now, even ones cached elsewhere; the library's
    // grants of a principal are also revoked so their refresh tokens die at once.
    await db
      .insertInto("revocations")
      .values({
        subject: body.data.subject,
        revoked_before_ms: now,
        reason: body.data.reason,
        revoked_by: admin.caller.principal,
      })
      .onConflict((oc) =>
        oc
          .column("subject")
          .doUpdateSet({ revoked_before_ms: now, reason: body.data.reason, revoked_by: admin.caller.principal }),
      )
      .execute();
    let grantsRevoked = 0;
    if (c.env.OAUTH_PROVIDER && !body.data.subject.startsWith("group:") && !body.data.subject.startsWith("email:")) {
      const userId = grantUserId(body.data.subject);
      let cursor: string | undefined;
      do {
        const page = await c.env.OAUTH_PROVIDER.listUserGrants(userId, cursor ? { cursor } : {});
        for (const grant of page.items) {
          await c.env.OAUTH_PROVIDER.revokeGrant(grant.id, userId);
          grantsRevoked++;
        }
        cursor = page.cursor;
      } while (cursor);
    }
    await writeAudit(
      db,
      admin,
      {
        action: "admin:revoke",
        server: null,
        tool: body.data.subject,
        decision: "allow",
        reason: "granted",
        outcome: "ok",
      },
      now,
    );
    return c.json({ subject: body.data.subject, revokedBeforeMs: now, grantsRevoked });
  });

  app.onError((error, c) => {
    if (error instanceof GatewayError)
      return c.json({ error: "temporarily_unavailable", error_description: error.message }, error.status as 503);
    console.error(JSON.stringify({ event: "admin_error", error: String(error) }));
    return c.json({ error: "server_error", error_description: "Internal error." }, 500);
  });

  return app;
}
