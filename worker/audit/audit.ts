import type { RequestContext } from "../authz/request-context.ts";
import { type AuditAction, type AuditDelivery, type AuditResult, SERVER_ACTIONS } from "../db/audit-log.table.ts";
import { derivedHmacKey } from "../http/derived-key.ts";
import { auditLine } from "./audit-line.ts";
import { canonicalJson } from "./canonical.ts";
import type { AuditContent } from "./chain.ts";

export type { AuditContent };

export type AuditOutcome = "ok" | "tool_error" | "jsonrpc_error" | "transport_error";

export interface AuditEntry {
  readonly action: AuditAction;
  readonly server: string | null;
  readonly tool: string | null;
  readonly decision: "allow" | "deny";
  readonly reason: string;
  readonly outcome?: AuditOutcome | null;
  /**
   * Why an allowed request to a server got no answer, when the writer knows better than the outcome
   * (a timeout, a closed connection); otherwise derived from the decision and the outcome (deliveryOf).
   */
  readonly delivery?: AuditDelivery | null;
  readonly errorCode?: number | null;
  readonly durationMs?: number | null;
  readonly argsDigest?: string | null;
  /** The subject the action is about (admin:block …), when it is not a tool. */
  readonly subject?: string | null;
  /** A person's free text (an admin's reason). */
  readonly note?: string | null;
}

/** Who a row is about and under what: a request's context, or (outside a request context) the same fields. */
export interface AuditOrigin {
  readonly principal: string;
  readonly clientId: string | null;
  readonly sessionId: string | null;
  readonly policyHash: string | null;
}

export function auditOriginOf(ctx: RequestContext): AuditOrigin {
  return {
    principal: ctx.caller.principal,
    clientId: ctx.caller.clientId,
    sessionId: ctx.sessionId,
    policyHash: ctx.policyHash,
  };
}

/**
 * Where audit rows are written: the caller's ledger (worker/audit/ledger.ts, `auditLog(env)`). `append`
 * resolves once the row is durable there, and rejects when it is not.
 */
export interface AuditLog {
  append(row: AuditContent): Promise<void>;
  /** The principal's allowed calls (the rate-limited actions) made after `sinceMs`: its roles' rate limit. */
  callsSince(principal: string, sinceMs: number): Promise<number>;
}

/** Names as clients sent them can be long; the row keeps enough to investigate, not an unbounded string. */
const MAX_AUDIT_NAME_CHARS = 256;
/** An admin's reason is capped where it is accepted (500); this is the row's own bound. */
const MAX_AUDIT_NOTE_CHARS = 1_000;

/**
 * Writes one audit row. It is awaited before the response is sent: if it throws, the caller must fail
 * the request closed (the row is the record that the call happened).
 */
export async function writeAudit(
  log: AuditLog,
  ctx: RequestContext,
  entry: AuditEntry,
  now = Date.now(),
): Promise<void> {
  await writeAuditRow(log, auditOriginOf(ctx), entry, now);
}

/** Writes one audit row for an origin that is not a request context (a sign-in, a token refresh). */
export async function writeAuditRow(
  log: AuditLog,
  origin: AuditOrigin,
  entry: AuditEntry,
  now = Date.now(),
): Promise<void> {
  const row = auditContentOf(origin, entry, now);
  await log.append(row);
  // The terminal's (and Workers Logs') line for this row, once it is durable (audit-line.ts).
  console.info(auditLine(row));
}

/** The row an entry makes: names bounded, and the three levels (decision, delivery, result) filled in. */
export function auditContentOf(origin: AuditOrigin, entry: AuditEntry, now: number): AuditContent {
  const outcome = entry.outcome ?? null;
  return {
    at_ms: now,
    principal: origin.principal,
    client_id: origin.clientId,
    session_id: origin.sessionId,
    action: entry.action,
    server: entry.server,
    tool: entry.tool === null ? null : entry.tool.slice(0, MAX_AUDIT_NAME_CHARS),
    decision: entry.decision,
    reason: entry.reason,
    outcome,
    delivery: deliveryOf(entry),
    result: resultOf(outcome),
    error_code: entry.errorCode ?? null,
    duration_ms: entry.durationMs ?? null,
    args_digest: entry.argsDigest ?? null,
    policy_hash: origin.policyHash,
    subject:
      entry.subject === undefined || entry.subject === null ? null : entry.subject.slice(0, MAX_AUDIT_NAME_CHARS),
    note: entry.note === undefined || entry.note === null ? null : entry.note.slice(0, MAX_AUDIT_NOTE_CHARS),
  };
}

/**
 * The delivery level (0007): only a request to a server has one. A refusal was never sent; an answer,
 * even the server's error, was delivered; a transport error is `unreachable` unless the writer said
 * more (call-guards.ts tells a timeout and a closed connection apart). The same rules derived the rows
 * from before 0007 (migrations/0007_audit_chain.sql).
 */
export function deliveryOf(entry: AuditEntry): AuditDelivery | null {
  if (!SERVER_ACTIONS.has(entry.action)) return entry.delivery ?? null;
  if (entry.decision === "deny") return "not_sent";
  if (entry.delivery !== undefined && entry.delivery !== null) return entry.delivery;
  switch (entry.outcome ?? null) {
    case "ok":
    case "tool_error":
    case "jsonrpc_error":
      return "delivered";
    case "transport_error":
      return "unreachable";
    case null:
      return null;
  }
}

/** The result level (0007): the server's answer, from the outcome; no answer, no result. */
export function resultOf(outcome: AuditOutcome | null): AuditResult | null {
  switch (outcome) {
    case "ok":
      return "ok";
    case "tool_error":
      return "tool_error";
    case "jsonrpc_error":
      return "protocol_error";
    default:
      return null;
  }
}

/**
 * SECURITY: a keyed digest (HMAC-SHA-256) of the canonical JSON of the arguments. Equal arguments give
 * equal digests, so an investigator can match a call to a known input; the arguments themselves are never
 * stored, and the key stops anyone with read access to the log from confirming guesses of small inputs.
 */
export async function argsDigest(key: CryptoKey, args: unknown): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(canonicalJson(args ?? null)));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Derives the audit digest key from a secret (HKDF-SHA-256 with a purpose label). */
export function auditKeyFrom(secret: string): Promise<CryptoKey> {
  return derivedHmacKey(secret, "hatago audit args digest v1");
}
