import { randomBytes } from "node:crypto";
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import type { ServerName, Session, Target } from "../targets/target.ts";

/** A call's result as the SDK returns it, narrowed to what the checks read. */
interface CallResult {
  readonly content?: readonly { readonly type?: string; readonly text?: string }[];
  readonly isError?: boolean;
}

/** `error:<kind>` names how a call failed (an HTTP status, a JSON-RPC code), so refusals can be told apart. */
export type CallOutcome = "ok" | "wrong" | `error:${string}`;

function failure(error: unknown): CallOutcome {
  if (error instanceof StreamableHTTPError) return `error:HTTP ${error.code}`;
  if (error instanceof McpError) return `error:JSON-RPC ${error.code}`;
  return `error:${error instanceof Error ? error.name : "unknown"}`;
}

/** How long one call may take before the bench counts it as an error (the SDK's own default). */
const CALL_TIMEOUT_MS = 60_000;

/** Echo `message` and check the answer is exactly that message: anything else is a wrong answer (cross-talk). */
export async function echo(target: Target, session: Session, message: string): Promise<CallOutcome> {
  let result: CallResult;
  try {
    result = (await session.client.callTool(
      { name: target.tool("everything", "echo"), arguments: { message } },
      undefined,
      { timeout: CALL_TIMEOUT_MS },
    )) as CallResult;
  } catch (error) {
    return failure(error);
  }
  if (result.isError) return "error:tool error";
  return result.content?.[0]?.text === `Echo: ${message}` ? "ok" : "wrong";
}

/** memory's read_graph: the answer must be a graph (entities and relations arrays). */
export async function readGraph(target: Target, session: Session): Promise<CallOutcome> {
  let result: CallResult;
  try {
    result = (await session.client.callTool({ name: target.tool("memory", "read_graph"), arguments: {} }, undefined, {
      timeout: CALL_TIMEOUT_MS,
    })) as CallResult;
  } catch (error) {
    return failure(error);
  }
  if (result.isError) return "error:tool error";
  try {
    const graph = JSON.parse(result.content?.[0]?.text ?? "") as { entities?: unknown; relations?: unknown };
    return Array.isArray(graph.entities) && Array.isArray(graph.relations) ? "ok" : "wrong";
  } catch {
    return "wrong";
  }
}

/** The representative call of each server. */
export function callOf(server: ServerName): (target: Target, session: Session, tag: string) => Promise<CallOutcome> {
  return server === "everything" ? (t, s, tag) => echo(t, s, tag) : (t, s) => readGraph(t, s);
}

/** A message unique to one call, so an answer meant for another call cannot pass the check. */
export function uniqueMessage(tag: string, bytes = 0): string {
  const id = `${tag}-${randomBytes(6).toString("hex")}`;
  return bytes <= id.length ? id : `${id}:${"x".repeat(bytes - id.length - 1)}`;
}
