import {
  BRIDGE_CREDENTIAL_HEADER,
  type BridgeKey,
  bridgeStatePath,
  mintBridgeCredential,
  STATE_DIGEST_HEADER,
  stateDigest,
} from "../contract.ts";

/**
 * Where data directories are kept: the Worker's state endpoint (worker/bridge/state.ts), reached at
 * `HATAGO_BRIDGE_STATE_URL` (deployed, a host the container's Durable Object intercepts; locally the
 * Worker's own URL). Every request carries a fresh `state` credential naming exactly one (server, principal).
 */
export interface StateStore {
  /** The saved archive, or null when nothing was saved yet. Throws when the store cannot answer. */
  load(server: string, principal: string): Promise<Uint8Array | null>;
  /** Stores the archive whole, or throws and leaves the previous version. */
  save(server: string, principal: string, archive: Buffer): Promise<void>;
}

/** A store's refusal: `status` and `code` from its JSON error, for the log and /health. */
export class StateStoreError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A store request that does not finish in this long has failed (a restore then waits and retries). */
const STATE_REQUEST_TIMEOUT_MS = 30_000;

export function httpStateStore(baseUrl: string, key: BridgeKey): StateStore {
  const url = (server: string) => new URL(bridgeStatePath(server), baseUrl);
  return {
    async load(server, principal) {
      const credential = await mintBridgeCredential(key, { principal, server, use: "state" });
      const response = await fetch(url(server), {
        headers: { [BRIDGE_CREDENTIAL_HEADER]: credential },
        signal: AbortSignal.timeout(STATE_REQUEST_TIMEOUT_MS),
      });
      if (response.status === 404) {
        const body = await response.json().catch(() => null);
        // Only the store's own "nothing saved" counts; a 404 from anything else is a failure.
        if (isErrorBody(body) && body.error.code === "no_state") return null;
        throw new StateStoreError(404, "not_found", "the state endpoint is not there (404)");
      }
      if (!response.ok) throw await storeError(response);
      const archive = new Uint8Array(await response.arrayBuffer());
      // A restore must be exactly what was saved: the store returns the digest it checked on the way in.
      const expected = response.headers.get(STATE_DIGEST_HEADER);
      if (expected !== (await stateDigest(archive))) {
        throw new StateStoreError(502, "digest_mismatch", "the restored archive does not match its digest");
      }
      return archive;
    },
    async save(server, principal, archive) {
      const body = new Uint8Array(archive);
      const digest = await stateDigest(body);
      const credential = await mintBridgeCredential(key, { principal, server, use: "state", bodyDigest: digest });
      const response = await fetch(url(server), {
        method: "PUT",
        headers: {
          [BRIDGE_CREDENTIAL_HEADER]: credential,
          [STATE_DIGEST_HEADER]: digest,
          "content-type": "application/octet-stream",
        },
        body,
        signal: AbortSignal.timeout(STATE_REQUEST_TIMEOUT_MS),
      });
      if (!response.ok) throw await storeError(response);
      await response.body?.cancel();
    },
  };
}

function isErrorBody(body: unknown): body is { error: { code: string; message?: string } } {
  if (typeof body !== "object" || body === null) return false;
  const error = (body as { error?: unknown }).error;
  return typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string";
}

async function storeError(response: Response): Promise<StateStoreError> {
  const body = await response.json().catch(() => null);
  const code = isErrorBody(body) ? body.error.code : "http_error";
  const message = isErrorBody(body) && typeof body.error.message === "string" ? body.error.message : "";
  return new StateStoreError(
    response.status,
    code,
    `the state store answered ${response.status} ${code}${message ? `: ${message.slice(0, 200)}` : ""}`,
  );
}
