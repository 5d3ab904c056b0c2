/** The bindings the session Durable Object reads (names: worker/bindings.ts); settings are parsed by worker/config.ts. */
export interface SessionEnv {
  readonly DB: D1Database;
  readonly MCP_SESSIONS?: DurableObjectNamespace;
  readonly BRIDGE?: DurableObjectNamespace;
}
