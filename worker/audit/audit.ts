import type { Kysely } from "kysely";
import type { RequestContext } from "../authz/request-context.ts";
import type { AuditAction } from "../db/audit-log.table.ts";
import type { AuditLogTable, Database } from "../db/database.ts";
import { auditLine } from "./audit-line.ts";

export type AuditOutcome = "ok" | "tool_error" | "jsonrpc_error" | "transport_error";

export interface AuditEntry {
  readonly action: AuditAction;
  readonly server: string | null;
  readonly tool: string | null;
  readonly decision: "allow" | "deny";
  readonly reason: string;
  readonly outcome?: AuditOutcome | null;
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

/** Names as clients sent them can be long; the row keeps enough to investigate, not an unbounded string. */
const MAX_AUDIT_NAME_CHARS = 256;
/** An admin's reason is capped where it is accepted (500); this is the row's own bound. */
const MAX_AUDIT_NOTE_CHARS = 1_000;

/**
 * Writes one audit row. It is awaited before the response is sent: if it throws, the caller must fail
 * the request closed (the row is the record that the call happened).
 */
export async function writeAudit(
  db: Kysely<Database>,
  ctx: RequestContext,
  entry: AuditEntry,
  now = Date.now(),
): Promise<void> {
  await writeAuditRow(db, auditOriginOf(ctx), entry, now);
}

/** Writes one audit row for an origin that is not a request context (a sign-in, a token refresh). */
export async function writeAuditRow(
  db: Kysely<Database>,
  origin: AuditOrigin,
  entry: AuditEntry,
  now = Date.now(),
): Promise<void> {
  const row: Omit<AuditLogTable, "id"> = {
    at_ms: now,
    principal: origin.principal,
    client_id: origin.clientId,
    session_id: origin.sessionId,
    action: entry.action,
    server: entry.server,
    tool: entry.tool === null ? null : entry.tool.slice(0, MAX_AUDIT_NAME_CHARS),
    decision: entry.decision,
    reason: entry.reason,
    outcome: entry.outcome ?? null,
    error_code: entry.errorCode ?? null,
    duration_ms: entry.durationMs ?? null,
    args_digest: entry.argsDigest ?? null,
    policy_hash: origin.policyHash,
    subject:
      entry.subject === undefined || entry.subject === null ? null : entry.subject.slice(0, MAX_AUDIT_NAME_CHARS),
    note: entry.note === undefined || entry.note === null ? null : entry.note.slice(0, MAX_AUDIT_NOTE_CHARS),
  };
  await db.insertInto("audit_log").values(row).execute();
  // The terminal's (and Workers Logs') line for this row, once it is written (audit-line.ts).
  console.info(auditLine(row));
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
export async function auditKeyFrom(secret: string): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: new TextEncoder().encode("hatago audit args digest v1"),
    },
    base,
    { name: "HMAC", hash: "SHA-256", length: 256 },
    false,
    ["sign"],
  );
}

/**
 * JSON with object keys sorted at every depth, so equal values have one spelling.
 *
 * SECURITY: iterative, never recursive. Its input is whatever a client sent as arguments; the gateway
 * bounds nesting at the boundary (container/src/contract.ts, MAX_JSON_DEPTH), and this walk would not
 * overflow the stack even without that bound (a 5,000-deep value once did, recursively).
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  // Work items: a value to write, or a literal piece of text (a separator or a closing bracket).
  const work: ({ readonly value: unknown } | string)[] = [{ value }];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    if (typeof item === "string") {
      out.push(item);
      continue;
    }
    const v = item.value;
    if (v === null || typeof v !== "object") {
      out.push(JSON.stringify(v) ?? "null");
    } else if (Array.isArray(v)) {
      // Pushed in reverse: the stack pops them in order.
      work.push("]");
      for (let i = v.length - 1; i >= 0; i--) {
        work.push({ value: v[i] });
        if (i > 0) work.push(",");
      }
      out.push("[");
    } else {
      const record = v as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      work.push("}");
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        work.push({ value: record[key] });
        work.push(`${JSON.stringify(key)}:`);
        if (i > 0) work.push(",");
      }
      out.push("{");
    }
  }
  return out.join("");
}
