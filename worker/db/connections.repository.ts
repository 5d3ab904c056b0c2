import type { Kysely } from "kysely";
import { type KeyRing, openTokenSet, sealTokenSet, type TokenSet } from "../connect/token-seal.ts";
import type { Database } from "./database.ts";

/** A connection as the pages show it: never the tokens. */
export interface ConnectionSummary {
  readonly provider: string;
  readonly scopes: readonly string[];
  readonly connectedAtMs: number;
  readonly expiresAtMs: number | null;
}

export async function saveConnection(
  db: Kysely<Database>,
  ring: KeyRing,
  row: { principal: string; provider: string; subjects: readonly string[]; tokens: TokenSet; connectedAtMs?: number },
  now = Date.now(),
): Promise<void> {
  const { keyId, sealed } = await sealTokenSet(ring, row.principal, row.provider, row.tokens);
  const values = {
    principal: row.principal,
    provider: row.provider,
    key_id: keyId,
    sealed,
    expires_at_ms: row.tokens.expiresAtMs,
    scopes: row.tokens.scopes.join(" "),
    subjects: JSON.stringify(row.subjects),
    connected_at_ms: row.connectedAtMs ?? now,
    updated_at_ms: now,
  };
  await db
    .insertInto("connections")
    .values(values)
    .onConflict((oc) =>
      oc.columns(["principal", "provider"]).doUpdateSet({
        key_id: values.key_id,
        sealed: values.sealed,
        expires_at_ms: values.expires_at_ms,
        scopes: values.scopes,
        subjects: values.subjects,
        connected_at_ms: values.connected_at_ms,
        updated_at_ms: values.updated_at_ms,
      }),
    )
    .execute();
}

export type LoadedConnection =
  | { readonly kind: "none" }
  /** A row that does not open (another key, tampered, copied from another principal): treated as no connection. */
  | { readonly kind: "unreadable" }
  | { readonly kind: "ok"; readonly tokens: TokenSet; readonly connectedAtMs: number; readonly subjects: string[] };

export async function loadConnection(
  db: Kysely<Database>,
  ring: KeyRing,
  principal: string,
  provider: string,
): Promise<LoadedConnection> {
  const row = await db
    .selectFrom("connections")
    .select(["key_id", "sealed", "connected_at_ms", "subjects"])
    .where("principal", "=", principal)
    .where("provider", "=", provider)
    .executeTakeFirst();
  if (!row) return { kind: "none" };
  const tokens = await openTokenSet(ring, principal, provider, { keyId: row.key_id, sealed: row.sealed });
  if (!tokens) return { kind: "unreadable" };
  const subjects: unknown = JSON.parse(row.subjects);
  return {
    kind: "ok",
    tokens,
    connectedAtMs: row.connected_at_ms,
    subjects: Array.isArray(subjects) ? subjects.filter((s): s is string => typeof s === "string") : [],
  };
}

export async function listConnections(db: Kysely<Database>, principal: string): Promise<ConnectionSummary[]> {
  const rows = await db
    .selectFrom("connections")
    .select(["provider", "scopes", "connected_at_ms", "expires_at_ms"])
    .where("principal", "=", principal)
    .orderBy("provider")
    .execute();
  return rows.map((r) => ({
    provider: r.provider,
    scopes: r.scopes.split(" ").filter((s) => s !== ""),
    connectedAtMs: r.connected_at_ms,
    expiresAtMs: r.expires_at_ms,
  }));
}

/** Deletes one connection; true when there was one. */
export async function deleteConnection(db: Kysely<Database>, principal: string, provider: string): Promise<boolean> {
  const result = await db
    .deleteFrom("connections")
    .where("principal", "=", principal)
    .where("provider", "=", provider)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/**
 * SECURITY: the kill switch reaches upstream accounts too. Deletes every connection of the principal a
 * block names, and of anyone whose binding subjects (email, groups) at connect time include it. Returns the
 * (principal, provider) pairs deleted, so their running processes can be stopped.
 */
export async function deleteConnectionsOfSubject(
  db: Kysely<Database>,
  subject: string,
): Promise<{ principal: string; provider: string }[]> {
  const rows = await db.selectFrom("connections").select(["principal", "provider", "subjects"]).execute();
  const hit = rows.filter((r) => {
    if (r.principal === subject) return true;
    const subjects: unknown = JSON.parse(r.subjects);
    return Array.isArray(subjects) && subjects.includes(subject);
  });
  for (const r of hit) await deleteConnection(db, r.principal, r.provider);
  return hit.map((r) => ({ principal: r.principal, provider: r.provider }));
}

/** Whether the person has a connection to the provider now (a row; whether it opens is the bridge's business). */
export async function connectionExists(db: Kysely<Database>, principal: string, provider: string): Promise<boolean> {
  const row = await db
    .selectFrom("connections")
    .select("provider")
    .where("principal", "=", principal)
    .where("provider", "=", provider)
    .executeTakeFirst();
  return row !== undefined;
}
