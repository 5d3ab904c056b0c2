import type { OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "../../container/src/contract.ts";
import { type AuditEntry, writeAudit } from "../audit/audit.ts";
import { type AuditLedger, auditLog, type LedgerBindings } from "../audit/ledger.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { HttpError } from "../http/errors.ts";
import { readRequestBytesAtMost } from "../http/read-capped.ts";

/** The bindings the admin routes use. */
export interface AdminBindings {
  readonly DB: D1Database;
  /** Where admin audit rows are written first (worker/audit/ledger.ts). */
  readonly AUDIT_LEDGER: DurableObjectNamespace<AuditLedger>;
  readonly OAUTH_PROVIDER?: OAuthHelpers;
  readonly MCP_SESSIONS?: DurableObjectNamespace;
  /** The bridge containers: a block stops the blocked person's processes that hold a connection token. */
  readonly BRIDGE?: DurableObjectNamespace;
}

/** Hono variables of an admin request: the admin's request context, set by the guard. */
export interface AdminVars {
  Variables: { admin: RequestContext };
  Bindings: AdminBindings;
}

/** An admin body is a subject and a reason: a few hundred bytes. */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;

/**
 * Reads an admin request's JSON body, bounded in size and in nesting (the gateway's one depth check,
 * container/src/contract.ts). Bad input is a 400/413/415 with a plain message (admin.routes.ts maps it).
 */
export async function readAdminJson(request: Request): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw new HttpError(415, "Content-Type must be application/json.", { rpcCode: ErrorCode.InvalidRequest });
  const bytes = await readRequestBytesAtMost(request, MAX_ADMIN_BODY_BYTES);
  if (bytes === null)
    throw new HttpError(413, `The body is larger than ${MAX_ADMIN_BODY_BYTES} bytes.`, {
      rpcCode: ErrorCode.InvalidRequest,
    });
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new HttpError(400, "The body must be JSON.", { rpcCode: ErrorCode.ParseError });
  }
  if (jsonDepthExceeds(value))
    throw new HttpError(400, `The body nests more than ${MAX_JSON_DEPTH} levels.`, {
      rpcCode: ErrorCode.InvalidRequest,
    });
  return value;
}

/** One admin audit row. SECURITY: awaited; if it cannot be written, the request fails (503). */
export async function adminAudit(
  env: LedgerBindings,
  admin: RequestContext,
  entry: Pick<AuditEntry, "action" | "decision" | "reason"> & Partial<Pick<AuditEntry, "subject" | "note" | "outcome">>,
  now = Date.now(),
): Promise<void> {
  try {
    await writeAudit(
      auditLog(env),
      admin,
      { server: null, tool: null, outcome: entry.decision === "allow" ? "ok" : null, ...entry },
      now,
    );
  } catch (cause) {
    throw new HttpError(503, "The audit log is unavailable; try again shortly.", {
      rpcCode: ErrorCode.InternalError,
      cause,
      retryAfterSeconds: 5,
    });
  }
}
