import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import type { Kysely } from "kysely";
import { withinRateLimit } from "../../policies/decide.ts";
import { type AuditEntry, type AuditOutcome, writeAudit } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { AuditAction } from "../db/audit-log.table.ts";
import type { Database } from "../db/database.ts";
import { RpcError } from "./errors.ts";

/** What the guards need: the database the audit log lives in. */
interface GuardDeps {
  readonly db: Kysely<Database>;
}

const auditUnavailable = () =>
  new RpcError(
    ErrorCode.InternalError,
    "The audit log is unavailable, so the call was not completed. Try again shortly.",
  );

/** Answer for a call over the caller's rate limit (an application error code in JSON-RPC's server range). */
export const RATE_LIMITED_CODE = -32_029;

/** Refuses (and audits) a call when the caller's roles' rate limit is used up for this minute. */
export async function enforceRateLimit(
  deps: GuardDeps,
  ctx: RequestContext,
  action: AuditAction,
  server: string,
  tool: string | null,
  digest: string,
): Promise<void> {
  if (withinRateLimit(ctx.grants, ctx.callsInWindow)) return;
  await auditOrFail(deps, ctx, { action, server, tool, decision: "deny", reason: "rate_limited", argsDigest: digest });
  throw new RpcError(
    RATE_LIMITED_CODE,
    `Rate limit reached: your roles allow ${ctx.grants.rateLimitPerMinute} calls per minute. Try again shortly.`,
  );
}

/** Writes the audit row; if it cannot be written, the request fails (the row is the record of the call). */
export async function auditOrFail(deps: GuardDeps, ctx: RequestContext, entry: AuditEntry): Promise<void> {
  try {
    await writeAudit(deps.db, ctx, entry);
  } catch (cause) {
    console.error(JSON.stringify({ event: "audit_write_failed", action: entry.action, error: String(cause) }));
    throw auditUnavailable();
  }
}

/**
 * The audit row of an allowed call (a tool call by default; a resource read or a prompt), once its outcome
 * is known: call the result with the outcome (and the JSON-RPC error code, if any). Timing starts when this
 * is made, just before the call is sent.
 */
export function allowedCallRecorder(
  deps: GuardDeps,
  ctx: RequestContext,
  call: {
    readonly action?: AuditAction;
    readonly server: string;
    readonly tool: string;
    readonly digest: string | null;
  },
): (outcome: AuditOutcome, errorCode?: number | null) => Promise<void> {
  const started = Date.now();
  return (outcome, errorCode = null) =>
    auditOrFail(deps, ctx, {
      action: call.action ?? "tools/call",
      server: call.server,
      tool: call.tool,
      decision: "allow",
      reason: "granted",
      outcome,
      errorCode,
      durationMs: Date.now() - started,
      argsDigest: call.digest,
    });
}

/**
 * How an allowed call that threw ended, for its row: the server answered with a JSON-RPC error (an McpError
 * with the server's code), or the request never completed (bridge down, timeout, connection closed).
 */
export function failedOutcome(error: unknown): {
  readonly outcome: "jsonrpc_error" | "transport_error";
  readonly errorCode: number | null;
} {
  if (!(error instanceof McpError)) return { outcome: "transport_error", errorCode: null };
  const never = error.code === ErrorCode.RequestTimeout || error.code === ErrorCode.ConnectionClosed;
  return { outcome: never ? "transport_error" : "jsonrpc_error", errorCode: error.code };
}
