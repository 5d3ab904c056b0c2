import { Hono } from "hono";

/** The Worker entry. The OAuth provider and the MCP gateway are mounted here as they land. */
const app = new Hono();

app.get("/health", (c) => c.json({ ok: true }));

export default app;
