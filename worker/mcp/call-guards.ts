import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { withinRateLimit } from "../../policies/decide.ts";
import { type AuditEntry, type AuditLog, type AuditOutcome, writeAudit } from "../audit/audit.ts";
import type { RequestContext } from "../authz/request-context.ts";
import type { AuditAction, AuditDelivery } from "../db/audit-log.table.ts";
import { RATE_WINDOW_MS } from "../db/grants.repository.ts";
import { RpcError } from "./errors.ts";

/** What the guards need: the audit log (the caller's ledger, worker/audit/ledger.ts). */
interface GuardDeps {
  readonly audit: AuditLog;
}

const auditUnavailable = () =>
  new RpcError(
    ErrorCode.InternalError,
    "The audit log is unavailable, so the call was not completed. Try again shortly.",
  );

/** Answer for a call over the caller's rate limit (an application error code in JSON-RPC's server range). */
export const RATE_LIMITED_CODE = -32_029;

/**
 * Refuses (and audits) a call when the caller's roles' rate limit is used up for this minute.
 *
 * The count is the caller's ledger's (worker/audit/ledger.ts), not D1's: rows reach D1 after their answers,
 * so D1 would leave out the calls just made (a client calling again at once would get one call too many).
 * It is one Durable Object request, made only when the caller's roles have a limit.
 */
export async function enforceRateLimit(
  deps: GuardDeps,
  ctx: RequestContext,
  action: AuditAction,
  server: string,
  tool: string | null,
  digest: string,
): Promise<void> {
  if (await rateLimitAllows(deps, ctx)) return;
  await auditOrFail(deps, ctx, { action, server, tool, decision: "deny", reason: "rate_limited", argsDigest: digest });
  throw new RpcError(
    RATE_LIMITED_CODE,
    `Rate limit reached: your roles allow ${ctx.grants.rateLimitPerMinute} calls per minute. Try again shortly.`,
  );
}

/**
 * Whether the caller's roles' rate limit allows one more call now. SECURITY: a ledger that cannot count
 * fails the request as the audit log being down does (its row could not be written either).
 */
export async function rateLimitAllows(deps: GuardDeps, ctx: RequestContext): Promise<boolean> {
  if (ctx.grants.rateLimitPerMinute === null) return true;
  let calls: number;
  try {
    calls = await deps.audit.callsSince(ctx.caller.principal, Date.now() - RATE_WINDOW_MS);
  } catch (cause) {
    console.error(JSON.stringify({ event: "audit_count_failed", error: String(cause) }));
    throw auditUnavailable();
  }
  return withinRateLimit(ctx.grants, calls);
}

/**
 * Writes the audit row; if it cannot be written, the request fails (the row is the record of the call).
 * Written means durable in the caller's ledger, not yet in D1: the ledger ships it after the answer.
 */
export async function auditOrFail(deps: GuardDeps, ctx: RequestContext, entry: AuditEntry): Promise<void> {
  try {
    await writeAudit(deps.audit, ctx, entry);
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
      delivery: deliveryOfFailure(outcome, errorCode),
      errorCode,
      durationMs: Date.now() - started,
      argsDigest: call.digest,
    });
}

/**
 * The delivery level of a call that got no answer, as far as the gateway can tell: the SDK's timeout and
 * closed-connection errors (failedOutcome keeps their codes) versus a bridge that could not be reached.
 * An answer, even an error, is `delivered` (audit.ts, deliveryOf).
 */
function deliveryOfFailure(outcome: AuditOutcome, errorCode: number | null): AuditDelivery | null {
  if (outcome !== "transport_error") return null;
  if (errorCode === ErrorCode.RequestTimeout) return "timeout";
  if (errorCode === ErrorCode.ConnectionClosed) return "connection_closed";
  return "unreachable";
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
