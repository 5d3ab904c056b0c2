import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import { type DeclaredCapabilities, usableWith } from "../../policies/client-capabilities.ts";
import { authorize } from "../../policies/decide.ts";
import type { RequestContext } from "../authz/request-context.ts";
import { executeStdioTool } from "./execute-stdio.ts";
import { qualifyName } from "./names.ts";

/**
 * THE tool list: what a `tools/list` answers, for every path that serves one (the session object's SDK
 * handler, tools.ts; the stateless 2026-07-28 request, modern/). Each path passes only how to list one
 * server's tools. Every entry is one `authorize()` (policies/decide.ts), the same decision a call of it
 * gets, so a caller is listed exactly what it may call.
 */
export type ListServerTools = (server: ServerId) => Promise<readonly Tool[]>;

/** Whether the caller holds anything at all on a server (only then is the server asked for its list). */
export function mayUseServer(ctx: RequestContext, server: ServerId): boolean {
  if (ctx.grants.servers.has(server)) return true;
  for (const key of ctx.grants.tools) if (key.startsWith(`${server}/`)) return true;
  return false;
}

/**
 * `declared`: what the client declared it can answer (initialize's capabilities on a legacy session, the
 * request's `_meta` on a modern one). A tool the server offers only to clients with a capability this one
 * did not declare is not listed (policies/client-capabilities.ts), as the server itself would not list it
 * to this client; calling it is refused the same way (audited.ts).
 */
export async function listTools(
  ctx: RequestContext,
  listFrom: ListServerTools,
  declared: DeclaredCapabilities,
): Promise<Tool[]> {
  const tools: Tool[] = [];
  const executable = SERVER_IDS.filter((s) => authorize(ctx.grants, { kind: "execute", server: s }).allow);
  if (executable.length > 0) tools.push(executeStdioTool(executable));
  const perServer = await Promise.all(
    SERVER_IDS.filter((s) => mayUseServer(ctx, s)).map(async (s) => {
      try {
        return { server: s, tools: await listFrom(s) };
      } catch (error) {
        // One server being down must not hide the others' tools.
        console.error(JSON.stringify({ event: "backend_list_failed", server: s, error: String(error) }));
        return { server: s, tools: [] };
      }
    }),
  );
  for (const { server: s, tools: list } of perServer) {
    for (const tool of list) {
      if (!usableWith(declared, s, tool.name)) continue;
      if (authorize(ctx.grants, { kind: "tool", server: s, tool: tool.name, annotations: tool.annotations }).allow) {
        tools.push({ ...tool, name: qualifyName(s, tool.name) });
      }
    }
  }
  return tools;
}
