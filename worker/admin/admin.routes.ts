import { type Context, Hono } from "hono";
import { z } from "zod";
import { authorize } from "../../policies/decide.ts";
import { loadRequestContext, type RequestContext } from "../authz/request-context.ts";
import type { Config } from "../config.ts";
import { auditRowsNewestFirst } from "../db/audit-log.repository.ts";
import { database } from "../db/database.ts";
import { unauthorizedResponse } from "../http/bearer.ts";
import { HttpError, oauthErrorResponse } from "../http/errors.ts";
import { AuthProps, subjectsOf } from "../oauth/props.ts";
import { ACCESS_JWT_HEADER, verifyAccessJwt } from "./access-jwt.ts";
import { type AdminVars, adminAudit, readAdminJson } from "./admin-request.ts";
import { mountBlockRoutes, revokeSubject } from "./blocks.routes.ts";

import { ADMIN_PATH } from "./paths.ts";

/** Admin endpoints under ADMIN_PATH. Deployments may also put a Cloudflare Access application in front. */
export { ADMIN_PATH };

/** Rows per audit page: enough to investigate, small enough for one D1 read. */
const MAX_AUDIT_ROWS = 500;

const RevokeBody = z.strictObject({
  /** A principal (`github:123`, `mock:bob`, …) or a group/email subject. */
  subject: z.string().min(1).max(300),
  reason: z.string().min(1).max(500),
});

const AuditQuery = z.object({
  principal: z.string().max(300).optional(),
  subject: z.string().max(300).optional(),
  decision: z.enum(["allow", "deny"]).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_AUDIT_ROWS).default(100),
  before: z.coerce.number().int().positive().optional(),
});

/**
 * The admin API. At run time an admin may only REDUCE access: revoke a principal's sign-ins, block and
 * lift blocks (the kill switch). Granting access happens only through the reviewed policy. Every request
 * that reaches a decision writes exactly one audit row, with an action from the fixed vocabulary
 * (db/audit-log.table.ts): nothing the caller typed becomes an action.
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
    if (!props.success) return unauthorizedResponse(c.req.url, "The token carries no usable identity; sign in again.");
    // Throws 401 (revoked or blocked: handled in onError) or 503 (D1 down) before anything is decided.
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
      await adminAudit(c.env, ctx, { action: "admin:request", decision: "deny", reason: "needs_admin" });
      return c.json(
        { error: "forbidden", error_description: "Admin endpoints need the admin level on every server." },
        403,
      );
    }
    c.set("admin", ctx);
    await next();
  });

  app.get("/audit", async (c) => {
    const admin = c.get("admin");
    const query = AuditQuery.safeParse(c.req.query());
    if (!query.success) {
      await adminAudit(c.env, admin, { action: "admin:read", decision: "deny", reason: "invalid_request" });
      return invalidRequest(c, query.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    }
    const rows = await auditRowsNewestFirst(database(c.env.DB), {
      limit: query.data.limit,
      principal: query.data.principal,
      subject: query.data.subject,
      decision: query.data.decision,
      beforeId: query.data.before,
    });
    await adminAudit(c.env, admin, { action: "admin:read", decision: "allow", reason: "granted", note: "audit" });
    return c.json({ rows });
  });

  app.post("/revoke", async (c) => {
    const admin = c.get("admin");
    const body = RevokeBody.safeParse(await readAdminJson(c.req.raw));
    if (!body.success) {
      await adminAudit(c.env, admin, { action: "admin:revoke", decision: "deny", reason: "invalid_request" });
      return invalidRequest(c, "Expected {subject, reason} with a principal, email or group subject.");
    }
    const result = await revokeSubject(c.env, admin, body.data.subject, body.data.reason);
    if (!result.ok) return invalidRequest(c, result.message);
    return c.json(result.body);
  });

  mountBlockRoutes(app);

  app.all("*", async (c) => {
    await adminAudit(c.env, c.get("admin"), { action: "admin:request", decision: "deny", reason: "unknown_path" });
    return c.json({ error: "not_found", error_description: "No such admin endpoint." }, 404);
  });

  app.onError(async (error, c) => {
    if (error instanceof HttpError) {
      // SECURITY: a revoked or blocked admin is told to sign in again (401 invalid_token), like every path.
      if (error.status === 401) return unauthorizedResponse(c.req.url, error.message);
      if (error.status === 400 || error.status === 413 || error.status === 415) {
        // An admin's unreadable body (not JSON, too large, too deep) was still a decided request: one row.
        const admin = c.get("admin") as RequestContext | undefined;
        if (admin) {
          await adminAudit(c.env, admin, { action: "admin:request", decision: "deny", reason: "invalid_request" });
        }
      }
      return oauthErrorResponse(error);
    }
    console.error(JSON.stringify({ event: "admin_error", error: String(error) }));
    return c.json({ error: "server_error", error_description: "Internal error." }, 500);
  });

  return app;
}

function invalidRequest(c: Context<AdminVars>, description: string): Response {
  return c.json({ error: "invalid_request", error_description: description }, 400);
}
