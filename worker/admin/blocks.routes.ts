import type { Hono } from "hono";
import { type Kysely, sql } from "kysely";
import { z } from "zod";
import { subjectKind } from "../../policies/subjects.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { type Database, database } from "../db/database.ts";
import { grantUserId } from "../oauth/props.ts";
import { type AdminBindings, type AdminVars, adminAudit, readAdminJson } from "./admin-request.ts";
import { closeSessionsOf } from "./close-sessions.ts";

const BlockBody = z.strictObject({
  /** A principal (`github:123`, `mock:bob`, …), `email:<address>` or `group:<…>`. */
  subject: z.string().min(1).max(300),
  reason: z.string().min(1).max(500),
});

/** Blocks listed at most per request; an organisation with more has a policy problem, not a list problem. */
const MAX_BLOCKS_LISTED = 1_000;

type Outcome<T> = { readonly ok: true; readonly body: T } | { readonly ok: false; readonly message: string };

/**
 * The block (kill switch that holds): `POST /admin/block {subject, reason}`, `DELETE /admin/block/<subject>`,
 * `GET /admin/blocks`. A blocked subject cannot sign in, cannot refresh and is refused (401) on every
 * protected path until the block is lifted; its open sessions are closed when the block is made.
 */
export function mountBlockRoutes(app: Hono<AdminVars>): void {
  app.post("/block", async (c) => {
    const admin = c.get("admin");
    const body = BlockBody.safeParse(await readAdminJson(c.req.raw));
    const subject = body.success ? body.data.subject : null;
    if (!body.success || subject === null || subjectKind(subject) === null) {
      await adminAudit(c.env.DB, admin, { action: "admin:block", decision: "deny", reason: "invalid_request" });
      return c.json(
        {
          error: "invalid_request",
          error_description: "Expected {subject, reason} with a principal, email: or group: subject.",
        },
        400,
      );
    }
    // SECURITY/operability: an admin cannot lock themselves (or a group they are in) out of the admin API.
    if (admin.caller.subjects.includes(subject)) {
      await adminAudit(c.env.DB, admin, { action: "admin:block", decision: "deny", reason: "self_block", subject });
      return c.json(
        { error: "invalid_request", error_description: "You cannot block yourself or a group you belong to." },
        400,
      );
    }
    const db = database(c.env.DB);
    const now = Date.now();
    const known = await subjectIsKnown(db, subject);
    await db
      .insertInto("blocks")
      .values({ subject, reason: body.data.reason, blocked_by: admin.caller.principal, blocked_at_ms: now })
      .onConflict((oc) =>
        oc.column("subject").doUpdateSet({ reason: body.data.reason, blocked_by: admin.caller.principal }),
      )
      .execute();
    // Recorded before anything else happens: the block holds from the row above, the rest is clean-up.
    await adminAudit(
      c.env.DB,
      admin,
      { action: "admin:block", decision: "allow", reason: "granted", subject, note: body.data.reason },
      now,
    );
    const grantsRevoked = await revokeGrantsOf(c.env, subject);
    const sessionsClosed = await closeSessionsOf(db, c.env.MCP_SESSIONS, subject);
    const row = await db.selectFrom("blocks").selectAll().where("subject", "=", subject).executeTakeFirstOrThrow();
    return c.json({
      subject,
      reason: row.reason,
      blockedBy: row.blocked_by,
      blockedAt: new Date(row.blocked_at_ms).toISOString(),
      blockedAtMs: row.blocked_at_ms,
      grantsRevoked,
      sessionsClosed,
      ...(known
        ? {}
        : {
            warning:
              "No binding, session or audit row has ever named this subject: check its spelling (principals look like github:583231, emails like email:ada@example.com). The block is in place anyway.",
          }),
    });
  });

  app.delete("/block/:subject{.+}", async (c) => {
    const admin = c.get("admin");
    const subject = c.req.param("subject");
    const db = database(c.env.DB);
    const lifted = await db.deleteFrom("blocks").where("subject", "=", subject).returning("subject").execute();
    if (lifted.length === 0) {
      await adminAudit(c.env.DB, admin, {
        action: "admin:unblock",
        decision: "deny",
        reason: "not_blocked",
        subject: subject.slice(0, 300),
      });
      return c.json({ error: "not_found", error_description: "This subject is not blocked." }, 404);
    }
    await adminAudit(c.env.DB, admin, { action: "admin:unblock", decision: "allow", reason: "granted", subject });
    return c.json({ subject, lifted: true });
  });

  app.get("/blocks", async (c) => {
    const rows = await database(c.env.DB)
      .selectFrom("blocks")
      .selectAll()
      .orderBy("blocked_at_ms", "desc")
      .limit(MAX_BLOCKS_LISTED)
      .execute();
    await adminAudit(c.env.DB, c.get("admin"), {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "blocks",
    });
    return c.json({
      blocks: rows.map((r) => ({
        subject: r.subject,
        reason: r.reason,
        blockedBy: r.blocked_by,
        blockedAt: new Date(r.blocked_at_ms).toISOString(),
        blockedAtMs: r.blocked_at_ms,
      })),
    });
  });
}

/**
 * Revocation (the older, softer kill switch): every sign-in of `subject` made before now stops working,
 * and the person may sign in again. Closes their open sessions too.
 */
export async function revokeSubject(
  env: AdminBindings,
  admin: RequestContext,
  subject: string,
  reason: string,
): Promise<Outcome<{ subject: string; revokedBeforeMs: number; grantsRevoked: number; sessionsClosed: number }>> {
  if (subjectKind(subject) === null) {
    await adminAudit(env.DB, admin, { action: "admin:revoke", decision: "deny", reason: "invalid_request" });
    return { ok: false, message: "Expected {subject, reason} with a principal, email or group subject." };
  }
  const now = Date.now();
  const db = database(env.DB);
  // The cut-off stops every token of sign-ins before now, even ones cached elsewhere; the library's
  // grants of a principal are also revoked so their refresh tokens die at once.
  await db
    .insertInto("revocations")
    .values({ subject, revoked_before_ms: now, reason, revoked_by: admin.caller.principal })
    .onConflict((oc) =>
      oc.column("subject").doUpdateSet({ revoked_before_ms: now, reason, revoked_by: admin.caller.principal }),
    )
    .execute();
  await adminAudit(
    env.DB,
    admin,
    { action: "admin:revoke", decision: "allow", reason: "granted", subject, note: reason },
    now,
  );
  const grantsRevoked = await revokeGrantsOf(env, subject);
  const sessionsClosed = await closeSessionsOf(db, env.MCP_SESSIONS, subject);
  return { ok: true, body: { subject, revokedBeforeMs: now, grantsRevoked, sessionsClosed } };
}

/**
 * Revokes the OAuth library's grants of a principal (all its access and refresh tokens). The library
 * keys grants by user id, so this is possible for principals only; tokens of an email's or a group's
 * members are refused by the standing check on every use and at refresh instead.
 */
async function revokeGrantsOf(env: AdminBindings, subject: string): Promise<number> {
  if (!env.OAUTH_PROVIDER || subject.startsWith("group:") || subject.startsWith("email:")) return 0;
  const userId = grantUserId(subject);
  let revoked = 0;
  let cursor: string | undefined;
  do {
    const page = await env.OAUTH_PROVIDER.listUserGrants(userId, cursor ? { cursor } : {});
    for (const grant of page.items) {
      await env.OAUTH_PROVIDER.revokeGrant(grant.id, userId);
      revoked++;
    }
    cursor = page.cursor;
  } while (cursor);
  return revoked;
}

/** Whether any binding, recorded session or audit row has ever named the subject. */
async function subjectIsKnown(db: Kysely<Database>, subject: string): Promise<boolean> {
  const row = await db
    .selectNoFrom((eb) => [
      eb
        .or([
          eb.exists(eb.selectFrom("bindings").select("role").where("subject", "=", subject)),
          eb.exists(eb.selectFrom("audit_log").select("id").where("principal", "=", subject)),
          eb.exists(eb.selectFrom("audit_log").select("id").where("subject", "=", subject)),
          eb.exists(eb.selectFrom("mcp_sessions").select("session_id").where("principal", "=", subject)),
          eb.exists(
            eb
              .selectFrom(["mcp_sessions as s", sql<{ value: string }>`json_each(s.subjects)`.as("j")])
              .select(sql`1`.as("one"))
              .where(sql.ref("j.value"), "=", subject),
          ),
        ])
        .as("known"),
    ])
    .executeTakeFirst();
  return Boolean(row?.known);
}
