import type { Kysely } from "kysely";
import type { RequestContext } from "../authz/request-context.ts";
import type { AuditLogTable, Database } from "../db/database.ts";

export type AuditOutcome = "ok" | "tool_error" | "jsonrpc_error" | "transport_error";

export interface AuditEntry {
  readonly action: string;
  readonly server: string | null;
  readonly tool: string | null;
  readonly decision: "allow" | "deny";
  readonly reason: string;
  readonly outcome?: AuditOutcome | null;
  readonly errorCode?: number | null;
  readonly durationMs?: number | null;
  readonly argsDigest?: string | null;
}

/** Names as clients sent them can be long; the row keeps enough to investigate, not an unbounded string. */
const MAX_AUDIT_NAME_CHARS = 256;

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
  const row: Omit<AuditLogTable, "id"> = {
    at_ms: now,
    principal: ctx.caller.principal,
    client_id: ctx.caller.clientId,
    session_id: ctx.sessionId,
    action: entry.action,
    server: entry.server,
    tool: entry.tool === null ? null : entry.tool.slice(0, MAX_AUDIT_NAME_CHARS),
    decision: entry.decision,
    reason: entry.reason,
    outcome: entry.outcome ?? null,
    error_code: entry.errorCode ?? null,
    duration_ms: entry.durationMs ?? null,
    args_digest: entry.argsDigest ?? null,
    policy_hash: ctx.policyHash,
  };
  await db.insertInto("audit_log").values(row).execute();
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

/** JSON with object keys sorted at every depth, so equal values have one spelling. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(",")}}`;
}
