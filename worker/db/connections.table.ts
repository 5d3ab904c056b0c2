/** The `connections` table (migrations/0006_connections.sql; migrations/STORAGE.md). */
export interface ConnectionsTable {
  principal: string;
  provider: string;
  key_id: string;
  /** base64url(iv ‖ ciphertext ‖ tag): see token-seal.ts. */
  sealed: string;
  expires_at_ms: number | null;
  scopes: string;
  /** JSON array of the person's binding subjects when they connected. */
  subjects: string;
  connected_at_ms: number;
  updated_at_ms: number;
}
