import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import type { ServerId } from "../../policies/catalog.ts";
import type { AuditLog } from "../audit/audit.ts";

/**
 * What the request handlers of every path need, as types only. Kept apart from the modules that use
 * them (tool-call.ts, audited.ts, execute-stdio.ts, tools.ts, content.ts) so none of those imports
 * another for a type, which made import cycles (tools.ts ⇄ execute-stdio.ts, tools.ts ⇄ audited.ts).
 */

/** Sends one JSON-RPC request to a server's process through the bridge's `/execute`; resolves to its response. */
export type ExecuteFn = (server: ServerId, principal: string, message: unknown) => Promise<unknown>;

/** A server's tools as it lists them now: asked only for a tool the catalog snapshot does not have. */
export type LiveTools = (server: ServerId) => Promise<readonly Tool[]>;

/** What a tools/call needs on every path (tool-call.ts). */
export interface ToolCallDeps {
  /** Where the call's audit row is written (the caller's ledger, worker/audit/ledger.ts). */
  readonly audit: AuditLog;
  readonly auditKey: CryptoKey;
  readonly liveTools: LiveTools;
  readonly execute: ExecuteFn;
}
