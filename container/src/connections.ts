import { connectionOf, type ServerId } from "../../policies/catalog.ts";
import {
  BRIDGE_CREDENTIAL_HEADER,
  type BridgeKey,
  bridgeConnectionPath,
  type ConnectionAnswer,
  mintBridgeCredential,
} from "./contract.ts";

/**
 * The bridge's side of connections (issue 17): asks the Worker for one person's upstream token right before
 * their process starts or is called (container/src/pool.ts). Deployed, the origin is the connection host the
 * container's Durable Object intercepts; locally the Worker's URL. Every request carries a fresh `connection`
 * credential naming exactly one (server, principal). SECURITY: the token is held in memory and in that
 * person's process only; it is never logged.
 */
export interface ConnectionSource {
  /** `tool`: the call about to be made with it (the Worker audits the use); null when starting a process. */
  fetch(server: ServerId, principal: string, tool: string | null): Promise<ConnectionAnswer>;
}

export class ConnectionUnavailable extends Error {}

/** A token request that takes longer than this fails the call (the Worker may be refreshing upstream). */
const CONNECTION_REQUEST_TIMEOUT_MS = 20_000;

export function httpConnectionSource(baseUrl: string, key: BridgeKey): ConnectionSource {
  return {
    async fetch(server, principal, tool) {
      if (!connectionOf(server)) throw new Error(`server ${server} declares no connection`);
      const credential = await mintBridgeCredential(key, { principal, server, use: "connection" });
      const url = new URL(bridgeConnectionPath(server), baseUrl);
      if (tool !== null) url.searchParams.set("tool", tool);
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { [BRIDGE_CREDENTIAL_HEADER]: credential },
          signal: AbortSignal.timeout(CONNECTION_REQUEST_TIMEOUT_MS),
        });
      } catch (error) {
        throw new ConnectionUnavailable(`the connection store could not be reached: ${String(error)}`);
      }
      const body: unknown = await response.json().catch(() => null);
      if (!response.ok) {
        const message = errorMessageOf(body) ?? `the connection store answered ${response.status}`;
        throw new ConnectionUnavailable(message);
      }
      const answer = parseAnswer(body);
      if (!answer) throw new ConnectionUnavailable("the connection store's answer was not understood");
      return answer;
    },
  };
}

function errorMessageOf(body: unknown): string | null {
  if (typeof body !== "object" || body === null) return null;
  const error = (body as { error?: { message?: unknown } }).error;
  return typeof error?.message === "string" ? error.message.slice(0, 300) : null;
}

function parseAnswer(body: unknown): ConnectionAnswer | null {
  if (typeof body !== "object" || body === null) return null;
  const b = body as Record<string, unknown>;
  if (b.status === "connected" && typeof b.token === "string" && typeof b.fingerprint === "string" && b.token !== "") {
    return { status: "connected", token: b.token, fingerprint: b.fingerprint };
  }
  if (b.status === "missing" && typeof b.connectUrl === "string" && typeof b.message === "string") {
    return { status: "missing", connectUrl: b.connectUrl, message: b.message };
  }
  return null;
}
