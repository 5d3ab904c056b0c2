import { base64url, fromBase64url } from "../../../container/src/contract.ts";
import type { ServerId } from "../../../policies/catalog.ts";
import { canonicalJson } from "../../audit/canonical.ts";
import { derivedHmacKey } from "../../http/derived-key.ts";

/**
 * The `requestState` of an InputRequiredResult (MCP 2026-07-28, basic/patterns/mrtr): what the client echoes
 * back on its retry so that the retry finds the call it continues.
 *
 * SECURITY: the revision has servers treat it as attacker-controlled and protect its integrity when it
 * influences anything (mrtr, "Server Requirements" 4–5). It does: it names a call waiting at the bridge. So
 * it is MACed (HMAC-SHA-256 with a key of its own, derived from the bridge secret) over everything the
 * retry must match: the principal and OAuth client that got it, the server and tool, a digest of the
 * arguments (`binding`), where the call waits (`origin`), and an expiry. A state presented by anyone else,
 * for any other call, altered in any byte, or late, is refused before anything is decided or sent. It is
 * signed, not encrypted: it holds nothing the client does not know already, but its own call's facts.
 * Single use is the bridge's: each round of questions is answered once (container/src/modern-call.ts).
 *
 *     rs1.<base64url(JSON payload)>.<base64url(HMAC-SHA-256(key, "rs1." + base64url(JSON payload)))>
 */

const VERSION = "rs1";
/** Longer than any state we make (a few hundred bytes): refused unparsed. */
const MAX_STATE_CHARS = 4_096;
/**
 * The state's own lifetime. The bridge's call timeout (60 s by default, at most an hour) is the real bound
 * of a call waiting at the bridge; this is the backstop for a state that outlives its bridge's memory.
 */
export const REQUEST_STATE_TTL_SECONDS = 3_600;

/** Where the call a state continues is waiting. */
export type StateOrigin =
  /** At the bridge (a stdio server asked its client something): container/src/modern-call.ts. */
  | { readonly kind: "bridge"; readonly pending: string; readonly round: number }
  /**
   * In the Worker itself: an input request the gateway asks on its own account (input-required.ts), with
   * what it needs to recognise the retry. Small scalar facts only: it travels through the client.
   */
  | {
      readonly kind: "gateway";
      readonly purpose: string;
      readonly data: Readonly<Record<string, string | number | boolean>>;
    };

/** The call a state belongs to: every field must match on the retry. */
export interface CallIdentity {
  readonly principal: string;
  readonly clientId: string | null;
  readonly server: ServerId;
  /** The server's own tool name. */
  readonly tool: string;
  /** callBinding(server, tool, arguments). */
  readonly binding: string;
}

interface Payload {
  readonly v: 1;
  readonly sub: string;
  readonly cid: string | null;
  readonly srv: string;
  readonly tool: string;
  readonly b: string;
  readonly exp: number;
  readonly o: StateOrigin;
}

export type OpenedState =
  | { readonly ok: true; readonly origin: StateOrigin }
  | { readonly ok: false; readonly reason: "request_state_invalid" | "request_state_expired" };

/** The state key: HKDF-SHA-256 of the bridge secret with a purpose label of its own (not the credential key). */
export function requestStateKeyFrom(secret: string): Promise<CryptoKey> {
  return derivedHmacKey(secret, "hatago mrtr request state v1", ["sign", "verify"]);
}

/** A digest of what the call is: its server, tool and arguments (canonical JSON, SHA-256, base64url). */
export async function callBinding(server: string, tool: string, args: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(canonicalJson({ server, tool, arguments: args ?? {} }));
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

export async function sealRequestState(
  key: CryptoKey,
  call: CallIdentity,
  origin: StateOrigin,
  nowMs = Date.now(),
): Promise<string> {
  const payload: Payload = {
    v: 1,
    sub: call.principal,
    cid: call.clientId,
    srv: call.server,
    tool: call.tool,
    b: call.binding,
    exp: Math.floor(nowMs / 1000) + REQUEST_STATE_TTL_SECONDS,
    o: origin,
  };
  const signed = `${VERSION}.${base64url(new TextEncoder().encode(JSON.stringify(payload)))}`;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signed)));
  return `${signed}.${base64url(mac)}`;
}

/**
 * The origin of a state presented with `call`, or why it is refused. SECURITY: the MAC is checked (in
 * constant time, by WebCrypto) before any byte of the payload is looked at; then every fact of the call.
 */
export async function openRequestState(
  key: CryptoKey,
  token: unknown,
  call: CallIdentity,
  nowMs = Date.now(),
): Promise<OpenedState> {
  const invalid = { ok: false, reason: "request_state_invalid" } as const;
  if (typeof token !== "string" || token.length > MAX_STATE_CHARS) return invalid;
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) return invalid;
  const payloadBytes = fromBase64url(parts[1] ?? "");
  const mac = fromBase64url(parts[2] ?? "");
  if (!payloadBytes || mac?.byteLength !== 32) return invalid;
  const signed = new TextEncoder().encode(`${VERSION}.${parts[1]}`);
  if (!(await crypto.subtle.verify("HMAC", key, mac, signed))) return invalid;
  const payload = parsePayload(payloadBytes);
  if (!payload) return invalid;
  if (
    payload.sub !== call.principal ||
    payload.cid !== call.clientId ||
    payload.srv !== call.server ||
    payload.tool !== call.tool ||
    payload.b !== call.binding
  ) {
    return invalid;
  }
  if (Math.floor(nowMs / 1000) > payload.exp) return { ok: false, reason: "request_state_expired" };
  return { ok: true, origin: payload.o };
}

/** Our own signed JSON, still narrowed field by field: a key leak should not become a type confusion. */
function parsePayload(bytes: Uint8Array): Payload | null {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return null;
  }
  if (!isObject(raw) || raw.v !== 1) return null;
  const { sub, cid, srv, tool, b, exp, o } = raw;
  if (typeof sub !== "string" || (cid !== null && typeof cid !== "string")) return null;
  if (typeof srv !== "string" || typeof tool !== "string" || typeof b !== "string") return null;
  if (typeof exp !== "number" || !Number.isSafeInteger(exp) || !isObject(o)) return null;
  let origin: StateOrigin;
  if (o.kind === "bridge" && typeof o.pending === "string" && Number.isSafeInteger(o.round)) {
    origin = { kind: "bridge", pending: o.pending, round: o.round as number };
  } else if (o.kind === "gateway" && typeof o.purpose === "string" && isObject(o.data)) {
    const data: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(o.data)) {
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") return null;
      data[k] = v;
    }
    origin = { kind: "gateway", purpose: o.purpose, data };
  } else {
    return null;
  }
  return { v: 1, sub, cid, srv, tool, b, exp, o: origin };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
