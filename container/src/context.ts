import type { IncomingMessage } from "node:http";
import type { BridgeConfig } from "./config.ts";
import {
  BRIDGE_CREDENTIAL_HEADER,
  type BridgeClaims,
  type BridgeKey,
  type CredentialUse,
  type ReplayCache,
  verifyBridgeCredential,
} from "./contract.ts";
import { BridgeHttpError } from "./errors.ts";
import { header } from "./http.ts";
import type { Logger } from "./log.ts";
import type { ServerPool } from "./pool.ts";
import type { SessionRegistry } from "./session.ts";

/** What every route handler works with. */
export interface BridgeContext {
  readonly config: BridgeConfig;
  readonly log: Logger;
  readonly key: BridgeKey;
  readonly replay: ReplayCache;
  readonly pool: ServerPool;
  readonly sessions: SessionRegistry;
}

const FAILURE_MESSAGES: Readonly<Record<string, string>> = {
  missing: "a bridge credential is required",
  malformed: "the bridge credential is malformed",
  bad_signature: "the bridge credential's signature does not verify",
  expired: "the bridge credential has expired",
  not_yet_valid: "the bridge credential is not valid yet",
  lifetime_too_long: "the bridge credential's lifetime is too long",
  wrong_server: "the bridge credential is for another server",
  wrong_use: "the bridge credential is for another route",
  wrong_session: "the bridge credential does not cover this MCP session",
  replayed: "the bridge credential has already been used",
  replay_cache_full: "too many credentials in flight; retry shortly",
};

/**
 * Verifies the request's credential for (server, use, session) and returns its claims.
 * SECURITY: the principal comes from here and nowhere else.
 */
export async function authenticate(
  ctx: BridgeContext,
  req: IncomingMessage,
  server: string,
  use: CredentialUse,
  sessionId: string | undefined,
): Promise<BridgeClaims> {
  const result = await verifyBridgeCredential(header(req, BRIDGE_CREDENTIAL_HEADER), {
    key: ctx.key,
    replay: ctx.replay,
    server,
    use,
    sessionId,
  });
  if (result.ok) return result.claims;
  ctx.log.info("auth.refused", { reason: result.reason, server, use });
  throw new BridgeHttpError(
    result.status,
    `credential_${result.reason}`,
    FAILURE_MESSAGES[result.reason] ?? "refused",
    {
      headers: result.status === 503 ? { "retry-after": "1" } : {},
    },
  );
}

export function credentialMissing(): BridgeHttpError {
  return new BridgeHttpError(401, "credential_missing", FAILURE_MESSAGES.missing ?? "refused");
}
