export { createMcpHandler, MCP_PATH, SSE_MESSAGE_PATH, SSE_PATH } from "./handler.ts";
export { EXECUTE_STDIO_TOOL, parseQualifiedName, parseQualifiedUri, qualifyName, qualifyUri } from "./names.ts";
export { McpSession } from "./session.ts";
