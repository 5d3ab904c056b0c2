import type { Tool } from "@modelcontextprotocol/sdk/types.js";

/**
 * `Mcp-Param-{Name}` headers (MCP 2026-07-28, streamable-http "Custom Headers from Tool Parameters"): a
 * tool may mark parameters with `x-mcp-header` so that clients mirror them into headers, and a server
 * that processes the body MUST then check each such header against the body (and refuse a request that
 * omits one whose value is in the body).
 *
 * The gateway's tools are stdio servers' tools, for which the annotation means nothing (the revision: a
 * stdio client MAY ignore it), and the gateway cannot check a header against a declaration it does not
 * have at call time (the catalog snapshot records no schemas, and asking the server for its tools on every
 * call would double the call's cost). SECURITY: so the modern tools/list offers no mirrored parameter:
 * every `x-mcp-header` annotation is removed from the schemas it lists. No `Mcp-Param-*` header is then a
 * recognised one, and one that a client sends anyway is ignored (as the revision has servers do with a
 * header they do not recognise): nothing downstream of the gateway routes on it, and nothing in the
 * gateway reads it. What could go wrong is an intermediary in front of the gateway trusting such a header
 * unchecked; offering none is what keeps conforming clients from sending them.
 */
const ANNOTATION = "x-mcp-header";

export function withoutHeaderMirroring(tools: readonly Tool[]): Tool[] {
  return tools.map((tool) => {
    // Most schemas have none: only those that mention it are copied.
    const text = JSON.stringify(tool.inputSchema);
    if (!text.includes(`"${ANNOTATION}"`)) return tool;
    // The annotation's value is a string; a parameter that happens to be named "x-mcp-header" is an object.
    const inputSchema = JSON.parse(text, (key, value) =>
      key === ANNOTATION && typeof value === "string" ? undefined : value,
    ) as Tool["inputSchema"];
    return { ...tool, inputSchema };
  });
}
