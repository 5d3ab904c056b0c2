import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import type { ClientCapabilityName, DeclaredCapabilities } from "../../../policies/client-capabilities.ts";
import { RpcError } from "../errors.ts";
import {
  type CallIdentity,
  type OpenedState,
  openRequestState,
  type StateOrigin,
  sealRequestState,
} from "./request-state.ts";

/**
 * Multi Round-Trip Requests on the modern path (MCP 2026-07-28, basic/patterns/mrtr): the one place that
 * turns input requests into the InputRequiredResult a client gets, and recognises the client's retry.
 *
 * Two kinds of asker use it. A stdio server that asks its client something mid-call (the bridge holds the
 * call: origin `bridge`, modern/call.ts). And the gateway itself, on its own account (origin `gateway`):
 * e.g. URL-mode elicitation to "connect your account" before a call can run (issue 17). For the latter:
 * answer the call with `inputRequired(key, call, { kind: "gateway", purpose, data }, { key: request })`
 * (after checking `offerable`), and on the next request call `readRetry`: a `continues` whose origin is
 * yours carries the client's `responses` by your keys; anything else is not your retry.
 */

/** The requests a server may embed (mrtr, "InputRequests"): their method and params. */
export interface InputRequest {
  readonly method: "elicitation/create" | "sampling/createMessage" | "roots/list";
  readonly params?: Readonly<Record<string, unknown>>;
}

/** The client capability an input request needs (mrtr: a server MUST NOT send one the client did not declare). */
export function capabilityFor(request: {
  readonly method: string;
  readonly params?: unknown;
}): ClientCapabilityName | null {
  switch (request.method) {
    case "sampling/createMessage":
      return "sampling";
    case "roots/list":
      return "roots";
    case "elicitation/create": {
      const mode = isObject(request.params) ? request.params.mode : undefined;
      return mode === "url" ? "elicitation.url" : "elicitation.form";
    }
    default:
      return null;
  }
}

export function offerable(
  declared: DeclaredCapabilities,
  request: { readonly method: string; readonly params?: unknown },
): boolean {
  const needed = capabilityFor(request);
  return needed !== null && declared.has(needed);
}

/** The InputRequiredResult: the requests, and the sealed state that brings the retry back to `origin`. */
export async function inputRequired(
  key: CryptoKey,
  call: CallIdentity,
  origin: StateOrigin,
  inputRequests: Readonly<Record<string, InputRequest | { readonly method: string; readonly params?: unknown }>>,
): Promise<Record<string, unknown>> {
  return {
    resultType: "input_required",
    inputRequests,
    requestState: await sealRequestState(key, call, origin),
  };
}

/** A request's relation to an earlier InputRequiredResult. */
export type Retry =
  /** No requestState: a call of its own (any inputResponses are ignored: nothing asked for them). */
  | { readonly kind: "fresh" }
  /** A verified continuation: where its call waits, and the client's answers by key. */
  | {
      readonly kind: "continues";
      readonly origin: StateOrigin;
      readonly responses: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
    }
  /** Not a retry we can take: the audit reason, and the answer. */
  | { readonly kind: "refused"; readonly reason: string; readonly error: RpcError };

/**
 * What the request's `requestState` and `inputResponses` say (mrtr: state is attacker-controlled; responses
 * are validated as an InputResponses object, each value a result object). `call` is what the request
 * names, computed by the caller the same way as when the state was sealed.
 */
export async function readRetry(
  key: CryptoKey,
  call: CallIdentity | null,
  params: Readonly<Record<string, unknown>>,
): Promise<Retry> {
  if (params.requestState === undefined) return { kind: "fresh" };
  const opened: OpenedState = call
    ? await openRequestState(key, params.requestState, call)
    : { ok: false, reason: "request_state_invalid" };
  if (!opened.ok) {
    return opened.reason === "request_state_expired"
      ? { kind: "refused", reason: opened.reason, error: noLongerWaiting() }
      : { kind: "refused", reason: opened.reason, error: invalidRequestState() };
  }
  const given = params.inputResponses ?? {};
  if (!isObject(given) || !Object.values(given).every(isObject)) {
    return {
      kind: "refused",
      reason: "invalid_params",
      error: new RpcError(
        ErrorCode.InvalidParams,
        "Invalid params: inputResponses must be an object whose values are the results of the input requests.",
      ),
    };
  }
  return { kind: "continues", origin: opened.origin, responses: given as Record<string, Record<string, unknown>> };
}

/** The answer to a requestState that is not this caller's, not this call's, or not ours at all. */
export function invalidRequestState(): RpcError {
  return new RpcError(ErrorCode.InvalidParams, "Invalid params: requestState is not valid for this request.");
}

/** The answer to a retry whose call is no longer waiting (timed out, answered already, or its bridge restarted). */
export function noLongerWaiting(): RpcError {
  return new RpcError(
    ErrorCode.InvalidParams,
    "The call this requestState continues is no longer waiting for input (it timed out or was already answered): call the tool again.",
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
