import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_EVICT_PREFIX,
  type BridgeKey,
  mintBridgeCredential,
} from "../../container/src/contract.ts";
import { serversUsingProvider } from "../../policies/catalog.ts";
import { writeAuditRow } from "../audit/audit.ts";
import { auditLog, type LedgerBindings } from "../audit/ledger.ts";
import { containerName } from "../bridge/router.ts";
import { deleteConnectionsOfSubject } from "../db/connections.repository.ts";
import { database } from "../db/database.ts";

export interface BridgeEvictRoute {
  key(): Promise<BridgeKey>;
  readonly insecureDevBridgeUrl: string | null;
}

/** Waits this long for a bridge to stop a process; a bridge that does not answer drops the token at its next call. */
const EVICT_TIMEOUT_MS = 5_000;

/**
 * SECURITY: a deleted connection leaves the running processes too. For each (principal, provider), every
 * server that uses the provider is told to stop that person's process and forget the token. Best effort: the
 * row is already gone, so a bridge that cannot be reached refuses the next call anyway (it asks first), and
 * the process is stopped then. Deployed, this wakes the person's container if it slept (it then has no process).
 */
export async function evictFromBridge(
  route: BridgeEvictRoute,
  /** The container namespace of this request's env (deployed). */
  containers: DurableObjectNamespace | undefined,
  deleted: readonly { readonly principal: string; readonly provider: string }[],
): Promise<void> {
  const key = await route.key();
  const jobs = deleted.flatMap(({ principal, provider }) =>
    serversUsingProvider(provider).map(async (server) => {
      const credential = await mintBridgeCredential(key, { principal, server, use: "connection-evict" });
      const init = {
        method: "DELETE",
        headers: { [BRIDGE_CREDENTIAL_HEADER]: credential },
        signal: AbortSignal.timeout(EVICT_TIMEOUT_MS),
      };
      try {
        let response: Response;
        if (route.insecureDevBridgeUrl !== null) {
          response = await fetch(new URL(`${BRIDGE_EVICT_PREFIX}${server}`, route.insecureDevBridgeUrl), init);
        } else {
          if (!containers) return;
          const stub = containers.get(containers.idFromName(containerName(server, principal)));
          response = await stub.fetch(new Request(`http://bridge${BRIDGE_EVICT_PREFIX}${server}`, init));
        }
        await response.body?.cancel();
        if (!response.ok)
          console.warn(JSON.stringify({ event: "connection_evict_refused", server, status: response.status }));
      } catch (error) {
        console.warn(JSON.stringify({ event: "connection_evict_failed", server, error: String(error) }));
      }
    }),
  );
  await Promise.all(jobs);
}

/**
 * The Worker's way to its bridge, registered once by createWorker (app.ts) so the admin block (which runs
 * with bindings only, no configuration) can stop a blocked person's processes. Null until a Worker is built.
 */
let registered: BridgeEvictRoute | null = null;
export function registerEvictRoute(route: BridgeEvictRoute): void {
  registered = route;
}

/**
 * SECURITY: the kill switch reaches upstream accounts. A block deletes every connection it covers (storage),
 * then tells the bridge to stop those people's processes that hold the tokens. Returns how many were deleted.
 */
export async function deleteConnectionsOnBlock(
  env: { readonly DB: D1Database; readonly BRIDGE?: DurableObjectNamespace | undefined } & LedgerBindings,
  subject: string,
): Promise<number> {
  const db = database(env.DB);
  const deleted = await deleteConnectionsOfSubject(db, subject);
  for (const { principal, provider } of deleted) {
    await writeAuditRow(
      auditLog(env),
      { principal, clientId: null, sessionId: null, policyHash: null },
      {
        action: "connection:disconnect",
        server: null,
        tool: null,
        decision: "allow",
        reason: "blocked",
        subject: provider,
      },
    );
  }
  if (registered && deleted.length > 0) await evictFromBridge(registered, env.BRIDGE, deleted);
  return deleted.length;
}
