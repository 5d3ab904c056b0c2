import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_ROUTES,
  type BridgeKey,
  type ExecuteRequestBody,
  MCP_SESSION_HEADER,
  mintBridgeCredential,
} from "../../container/src/contract.ts";
import { isolationOf, type ServerId } from "../../policies/catalog.ts";
import { HttpError } from "../http/errors.ts";
import type { BridgeFetch } from "../mcp/backends.ts";

export interface BridgeRoute {
  readonly key: BridgeKey;
  /**
   * Local development only: the URL of a bridge process, used instead of the Container binding.
   * Refused in production by the configuration (see worker/config.ts).
   */
  readonly insecureDevBridgeUrl: string | null;
  readonly containers: DurableObjectNamespace | undefined;
}

/**
 * The Container Durable Object a request goes to: one per (server, principal) for `per-user` servers,
 * one per server for `shared` ones (the catalog decides).
 */
export function containerName(server: ServerId, principal: string): string {
  return isolationOf(server) === "shared" ? `shared:${server}` : `user:${server}:${principal}`;
}

/**
 * Requests to the bridge on behalf of one principal. Each request carries a fresh, single-use credential
 * naming the principal, the server and the bridge session; the client's own token never leaves the Worker.
 */
export function bridgeFetchFor(route: BridgeRoute, principal: string): BridgeFetch {
  return async (server, path, init) => {
    const headers = new Headers(init.headers);
    // SECURITY: only headers the SDK client transport sets are forwarded; identity travels in the credential.
    headers.delete("authorization");
    const sessionId = headers.get(MCP_SESSION_HEADER) ?? undefined;
    const credential = await mintBridgeCredential(route.key, {
      principal,
      server,
      use: path === BRIDGE_ROUTES.execute ? "execute" : path === BRIDGE_ROUTES.listen ? "listen" : "mcp",
      ...(sessionId === undefined ? {} : { sessionId }),
    });
    headers.set(BRIDGE_CREDENTIAL_HEADER, credential);
    if (route.insecureDevBridgeUrl !== null) {
      return fetch(new URL(path, route.insecureDevBridgeUrl), { ...init, headers });
    }
    if (!route.containers) {
      throw new HttpError(503, "No bridge is configured for this deployment.", { rpcCode: ErrorCode.InternalError });
    }
    const stub = route.containers.get(route.containers.idFromName(containerName(server, principal)));
    const response = await stub.fetch(new Request(`http://bridge${path}`, { ...init, headers }));
    if (await isContainerLimitRefusal(response)) {
      throw new HttpError(
        503,
        `No container is free for the "${server}" server: this deployment's container limit (hatago:maxInstances) ` +
          "is reached. Containers are released after some minutes without use; try again shortly.",
        { rpcCode: ErrorCode.InternalError, retryAfterSeconds: CONTAINER_LIMIT_RETRY_AFTER_SECONDS },
      );
    }
    return response;
  };
}

/**
 * How long to wait after a refused container start. Containers sleep after their idlest server's idle
 * timeout (minutes, worker/bridge/container.ts), so a free one rarely appears within seconds.
 */
export const CONTAINER_LIMIT_RETRY_AFTER_SECONDS = 60;

/**
 * The 503 @cloudflare/containers answers when Cloudflare provides no instance: the application's
 * `max_instances` are all running (or the application is still being provisioned). Its text is the
 * library's (0.3.x `containerFetch`); the bridge's own 503s say something else.
 */
export async function isContainerLimitRefusal(response: Response): Promise<boolean> {
  if (response.status !== 503) return false;
  const text = await response.clone().text();
  return text.startsWith("There is no Container instance available");
}

/** One JSON-RPC request to a server's process through `/execute`; resolves to the process's response. */
export async function executeOnBridge(fetchBridge: BridgeFetch, server: ServerId, message: unknown): Promise<unknown> {
  const body: Omit<ExecuteRequestBody, "message"> & { message: unknown } = { server, message };
  const response = await fetchBridge(server, BRIDGE_ROUTES.execute, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new HttpError(502, `The "${server}" server refused the request (${response.status}).`, {
      rpcCode: ErrorCode.InternalError,
      cause: text.slice(0, 500),
    });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new HttpError(502, `The "${server}" server sent an unreadable answer.`, {
      rpcCode: ErrorCode.InternalError,
      cause,
    });
  }
}
