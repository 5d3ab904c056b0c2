/** Who the gateway says it is, to clients of every era (session.ts's `initialize`, modern/discover). */
export const SERVER_INFO = { name: "hatago-auth", version: "0.1.0" } as const;

export const INSTRUCTIONS =
  "Tools of several MCP servers, named <server>__<tool>. You see only the tools your organisation's policy grants you.";
