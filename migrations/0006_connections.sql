-- Connections: each person's own upstream account (issue 17). One row per (principal, provider): the
-- upstream access and refresh tokens, sealed with AES-GCM under a key from a Worker secret
-- (HATAGO_CONNECTION_KEYS); `key_id` names the key so keys can be rotated; the principal and the provider
-- are the additional authenticated data, so a row copied to another principal or provider does not open.
-- Deleted on disconnect, on a block of any of `subjects`, and when the upstream refuses a refresh.
CREATE TABLE connections (
  principal TEXT NOT NULL,                -- mock:bob | github:583231
  provider TEXT NOT NULL,                 -- a provider id of HATAGO_CONNECT_PROVIDERS, e.g. github
  key_id TEXT NOT NULL,                   -- the sealing key's id, e.g. k1
  sealed TEXT NOT NULL,                   -- base64url(iv ‖ AES-GCM ciphertext ‖ tag) of the token set JSON
  expires_at_ms INTEGER,                  -- the access token's expiry (Unix ms), NULL when the upstream gave none
  scopes TEXT NOT NULL,                   -- granted scopes, space-separated, e.g. 'repo read:user'
  subjects TEXT NOT NULL DEFAULT '[]',    -- JSON array of the person's binding subjects at connect time (blocks)
  connected_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (principal, provider)
) STRICT, WITHOUT ROWID;
