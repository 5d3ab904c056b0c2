import type { Hono } from "hono";
import type { Kysely } from "kysely";
import { z } from "zod";
import { subjectKind } from "../../policies/subjects.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { forgetAllReused } from "../authz/reuse-cache.ts";
import { deleteConnectionsOnBlock } from "../connect/index.ts";
import {
  type BlockRow,
  blockOf,
  deleteBlock,
  newestBlocks,
  subjectIsKnown,
  upsertBlock,
  upsertRevocation,
} from "../db/blocks.repository.ts";
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
    const result = body.success
      ? await blockSubject(c.env, admin, body.data.subject, body.data.reason)
      : await refuseBlock(c.env, admin, "invalid_request", null);
    if (!result.ok) return c.json({ error: "invalid_request", error_description: result.message }, 400);
    return c.json(result.body);
  });

  app.delete("/block/:subject{.+}", async (c) => {
    const result = await liftBlock(c.env, c.get("admin"), c.req.param("subject"));
    if (!result.ok) return c.json({ error: "not_found", error_description: result.message }, 404);
    return c.json(result.body);
  });

  app.get("/blocks", async (c) => {
    const blocks = await listBlocks(database(c.env.DB));
    await adminAudit(c.env, c.get("admin"), {
      action: "admin:read",
      decision: "allow",
      reason: "granted",
      note: "blocks",
    });
    return c.json({ blocks });
  });
}

/** A block as the API and the console show it. */
export interface BlockView {
  readonly subject: string;
  readonly reason: string;
  readonly blockedBy: string;
  readonly blockedAt: string;
  readonly blockedAtMs: number;
}

export interface BlockMade extends BlockView {
  readonly grantsRevoked: number;
  readonly sessionsClosed: number;
  /** Set when nothing has ever named the subject (a likely typo). */
  readonly warning?: string;
}

/** Why a block cannot be made, before anything is written (the console's confirmation step asks this too). */
export function blockRefusal(admin: RequestContext, subject: string): "invalid_request" | "self_block" | null {
  if (subject.length === 0 || subject.length > 300 || subjectKind(subject) === null) return "invalid_request";
  // SECURITY/operability: an admin cannot lock themselves (or a group they are in) out of the admin API.
  if (admin.caller.subjects.includes(subject)) return "self_block";
  return null;
}

const REFUSALS = {
  invalid_request: "Expected {subject, reason} with a principal, email: or group: subject.",
  self_block: "You cannot block yourself or a group you belong to.",
} as const;

const UNKNOWN_SUBJECT_WARNING =
  "No binding, session or audit row has ever named this subject: check its spelling (principals look like github:583231, emails like email:ada@example.com). The block is in place anyway.";

async function refuseBlock(
  env: AdminBindings,
  admin: RequestContext,
  why: keyof typeof REFUSALS,
  subject: string | null,
): Promise<Outcome<never>> {
  await adminAudit(env, admin, {
    action: "admin:block",
    decision: "deny",
    reason: why,
    ...(why === "self_block" && subject !== null ? { subject } : {}),
  });
  return { ok: false, message: REFUSALS[why] };
}

/**
 * Blocks a subject: the row first (the block holds from that moment), then its audit row, then the
 * clean-up: the principal's OAuth grants revoked and every recorded session it covers closed.
 */
export async function blockSubject(
  env: AdminBindings,
  admin: RequestContext,
  subject: string,
  reason: string,
): Promise<Outcome<BlockMade>> {
  const refusal = blockRefusal(admin, subject);
  if (refusal !== null || reason.length === 0 || reason.length > 500) {
    return refuseBlock(env, admin, refusal ?? "invalid_request", subject);
  }
  const db = database(env.DB);
  const now = Date.now();
  const known = await subjectIsKnown(db, subject);
  await upsertBlock(db, { subject, reason, blocked_by: admin.caller.principal, blocked_at_ms: now });
  // Holds in this isolate from the next request; elsewhere within the decision cache's bound (1 s).
  forgetAllReused();
  // Recorded before anything else happens: the block holds from the row above, the rest is clean-up.
  await adminAudit(
    env,
    admin,
    { action: "admin:block", decision: "allow", reason: "granted", subject, note: reason },
    now,
  );
  const grantsRevoked = await revokeGrantsOf(env, subject);
  // Again after the grants went: a token checked by the library while they were being revoked is not reused.
  forgetAllReused();
  const sessionsClosed = await closeSessionsOf(db, env.MCP_SESSIONS, subject);
  // Upstream accounts too (issue 17): the connections it covers are deleted and their processes stopped.
  await deleteConnectionsOnBlock(env, subject);
  const row = await blockOf(db, subject);
  if (!row) throw new Error("the block just made is not there");
  return {
    ok: true,
    body: {
      ...blockView(row),
      grantsRevoked,
      sessionsClosed,
      ...(known ? {} : { warning: UNKNOWN_SUBJECT_WARNING }),
    },
  };
}

/** Lifts a block (404-worthy when there is none). Audited either way. */
export async function liftBlock(
  env: AdminBindings,
  admin: RequestContext,
  subject: string,
): Promise<Outcome<{ subject: string; lifted: true }>> {
  const lifted = await deleteBlock(database(env.DB), subject);
  forgetAllReused();
  if (!lifted) {
    await adminAudit(env, admin, {
      action: "admin:unblock",
      decision: "deny",
      reason: "not_blocked",
      subject: subject.slice(0, 300),
    });
    return { ok: false, message: "This subject is not blocked." };
  }
  await adminAudit(env, admin, { action: "admin:unblock", decision: "allow", reason: "granted", subject });
  return { ok: true, body: { subject, lifted: true } };
}

/** The blocks in force, newest first. */
export async function listBlocks(db: Kysely<Database>): Promise<BlockView[]> {
  return (await newestBlocks(db, MAX_BLOCKS_LISTED)).map(blockView);
}

export function blockView(r: BlockRow): BlockView {
  return {
    subject: r.subject,
    reason: r.reason,
    blockedBy: r.blocked_by,
    blockedAt: new Date(r.blocked_at_ms).toISOString(),
    blockedAtMs: r.blocked_at_ms,
  };
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
    await adminAudit(env, admin, { action: "admin:revoke", decision: "deny", reason: "invalid_request" });
    return { ok: false, message: "Expected {subject, reason} with a principal, email or group subject." };
  }
  const now = Date.now();
  const db = database(env.DB);
  // The cut-off stops every token of sign-ins before now, even ones cached elsewhere; the library's
  // grants of a principal are also revoked so their refresh tokens die at once.
  await upsertRevocation(db, { subject, revoked_before_ms: now, reason, revoked_by: admin.caller.principal });
  forgetAllReused();
  await adminAudit(
    env,
    admin,
    { action: "admin:revoke", decision: "allow", reason: "granted", subject, note: reason },
    now,
  );
  const grantsRevoked = await revokeGrantsOf(env, subject);
  // Again after the grants went: a token checked by the library while they were being revoked is not reused.
  forgetAllReused();
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
