import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_STATE_PATH_PREFIX,
  type BridgeKey,
  type CredentialFailure,
  DEFAULT_STATE_MAX_BYTES,
  importBridgeKey,
  ReplayCache,
  STATE_DIGEST_HEADER,
  stateArchiveBoundBytes,
  stateDigest,
  verifyBridgeCredential,
} from "../../container/src/contract.ts";
import { catalog, isolationOf, isServerId, type ServerId } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import { containerName } from "./router.ts";

/**
 * The Worker's side of "state that survives" (issue 13): one R2 object per data directory, keyed by
 * (server, owner), read and written only on a verified `state` credential from a bridge.
 *
 * Reached two ways, same function:
 * - deployed, from inside a container: `BridgeContainer`'s outbound handler for BRIDGE_STATE_HOST passes the
 *   intercepting container's id (`containerId`), and the credential's (server, principal) must be that very
 *   container's (router.ts `containerName`), so a container can reach its own directory and no other, even
 *   with the bridge secret in hand;
 * - locally, as a route of the Worker (`containerId: null`), only in HATAGO_INSECURE_DEV_BRIDGE_URL mode,
 *   which the configuration refuses in production.
 *
 * Why R2 and not the container's own Durable Object storage: locally containers do not run, so the
 * container's Durable Object cannot be constructed, and the same code could not run against workerd's
 * simulation; R2 simulates locally. R2 also takes a directory as ONE object (up to 5 GB) whose put is atomic,
 * where Durable Object storage caps a value at 2 MB (a directory would be chunked across rows, made atomic
 * only by a transaction); it costs $0.015 per GB-month against $0.20 for Durable Object storage; and a restore
 * is one GET. See migrations/STORAGE.md for the key layout.
 */

export interface StateRequestContext {
  readonly key: BridgeKey;
  readonly replay: ReplayCache;
  readonly bucket: R2Bucket | undefined;
  /** The container making the request (deployed), or null for the local dev route. */
  readonly containerId: string | null;
  /** Needed with a `containerId`: to tell whether a (server, principal) is that container's. */
  readonly containers: DurableObjectNamespace | undefined;
}

/** R2 key prefix; the version lets a future archive format live beside this one. */
export const STATE_KEY_PREFIX = "bridge-state/v1/";

/**
 * The object that holds (server, principal)'s directory: `bridge-state/v1/<server>/shared` for a shared
 * server, `bridge-state/v1/<server>/u-<sha256(principal) hex>` for a per-user one. SECURITY: the principal
 * is hashed, so no principal string becomes (part of) a key's path, and the server id is a catalog id.
 */
export async function stateObjectKey(server: ServerId, principal: string): Promise<string> {
  if (isolationOf(server) === "shared") return `${STATE_KEY_PREFIX}${server}/shared`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(principal)));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${STATE_KEY_PREFIX}${server}/u-${hex}`;
}

/** The directory size limit of a server (catalog `stateMaxBytes`, else the default). */
export function stateMaxBytesOf(server: ServerId): number {
  const entry: CatalogEntry = catalog[server];
  return entry.stateMaxBytes ?? DEFAULT_STATE_MAX_BYTES;
}

export async function handleBridgeStateRequest(request: Request, ctx: StateRequestContext): Promise<Response> {
  const url = new URL(request.url);
  if (!url.pathname.startsWith(BRIDGE_STATE_PATH_PREFIX)) return problem(404, "not_found", "no such state route");
  // SECURITY: exact, own-property catalog match on the raw path (no decoding), like the bridge's routes.
  const server = url.pathname.slice(BRIDGE_STATE_PATH_PREFIX.length);
  if (!isServerId(server)) return problem(404, "not_found", "no such server");
  if (request.method !== "GET" && request.method !== "PUT") {
    return problem(405, "method_not_allowed", "GET or PUT", { allow: "GET, PUT" });
  }
  if (request.headers.get("origin") !== null) return problem(403, "origin_refused", "browser requests are refused");
  if (!ctx.bucket) return problem(503, "no_state_store", "this deployment has no BRIDGE_STATE bucket");

  let body: Uint8Array<ArrayBuffer> | undefined;
  let digest: string | undefined;
  if (request.method === "PUT") {
    const bound = stateArchiveBoundBytes(stateMaxBytesOf(server));
    const read = await readBounded(request, bound);
    if (read === "too_large") {
      return problem(413, "state_too_large", `the archive is over ${bound} bytes for the "${server}" server`);
    }
    if (read === "unreadable") return problem(400, "body_incomplete", "the body ended before it was complete");
    body = read;
    digest = await stateDigest(body);
    // A body cut short (a bridge killed mid-save) does not match the digest it announced: nothing is stored.
    if (request.headers.get(STATE_DIGEST_HEADER) !== digest) {
      return problem(400, "digest_mismatch", "the body does not match its digest; the previous version is kept");
    }
  }

  const verified = await verifyBridgeCredential(request.headers.get(BRIDGE_CREDENTIAL_HEADER), {
    key: ctx.key,
    replay: ctx.replay,
    server,
    use: "state",
    sessionId: undefined,
    ...(digest === undefined ? {} : { bodyDigest: digest }),
  });
  if (!verified.ok) return credentialProblem(verified.reason, verified.status);
  const principal = verified.claims.sub;

  // SECURITY: deployed, a container reaches only its own directory, whatever credential it can mint.
  if (ctx.containerId !== null) {
    const own = ctx.containers?.idFromName(containerName(server, principal)).toString();
    if (own === undefined || own !== ctx.containerId) {
      return problem(403, "wrong_container", "this container does not hold that server and principal");
    }
  }

  const objectKey = await stateObjectKey(server, principal);
  if (request.method === "GET") {
    const object = await ctx.bucket.get(objectKey);
    if (object === null) return problem(404, "no_state", "nothing saved yet");
    return new Response(object.body, {
      headers: {
        "content-type": "application/octet-stream",
        [STATE_DIGEST_HEADER]: object.customMetadata?.digest ?? "",
        "cache-control": "no-store",
      },
    });
  }
  if (body === undefined || digest === undefined) throw new Error("unreachable: a PUT has a body");
  // One put of the whole, checked archive: R2 replaces the object atomically (readers see the old or the
  // new version, never a mix), and `sha256` makes R2 itself refuse bytes that changed on the way.
  await ctx.bucket.put(objectKey, body, {
    sha256: await crypto.subtle.digest("SHA-256", body),
    customMetadata: { digest, server, savedAt: new Date().toISOString() },
  });
  return new Response(null, { status: 204 });
}

/** Reads a body up to `bound` bytes; stops reading at once beyond it. */
async function readBounded(
  request: Request,
  bound: number,
): Promise<Uint8Array<ArrayBuffer> | "too_large" | "unreadable"> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (Number.isFinite(declared) && declared > bound) return "too_large";
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > bound) {
        await reader.cancel().catch(() => {});
        return "too_large";
      }
      chunks.push(value);
    }
  } catch {
    return "unreadable";
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

function credentialProblem(reason: CredentialFailure, status: 401 | 403 | 503): Response {
  return problem(status, `credential_${reason}`, "the state credential was refused");
}

function problem(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ error: { code, message } }, { status, headers: { "cache-control": "no-store", ...headers } });
}

/**
 * UNSAFE, local development only: the state route on the Worker itself, for a bridge process that is not in
 * a container (`npm start`). It exists only when HATAGO_INSECURE_DEV_BRIDGE_URL is set, which the
 * configuration refuses in production (worker/config.ts); every request still needs a `state` credential.
 */
export function devBridgeStateRoute(settings: {
  readonly insecureDevBridgeUrl: string | null;
  readonly bridgeSecret: string;
}): ((request: Request, env: { readonly BRIDGE_STATE?: R2Bucket }) => Promise<Response>) | null {
  if (settings.insecureDevBridgeUrl === null) return null;
  const key = importBridgeKey(settings.bridgeSecret);
  const replay = new ReplayCache(10_000);
  return async (request, env) =>
    handleBridgeStateRequest(request, {
      key: await key,
      replay,
      bucket: env.BRIDGE_STATE,
      containerId: null,
      containers: undefined,
    });
}
