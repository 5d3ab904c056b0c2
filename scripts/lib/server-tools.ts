import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { findOnPath, launchSpec, missingFor } from "../../container/src/launch.ts";
import { catalog, SERVER_IDS, type ServerId } from "../../policies/catalog.ts";
import type { CatalogEntry, ServerSnapshot, ToolAnnotations } from "../../policies/catalog.types.ts";
import {
  ALL_CLIENT_CAPABILITIES,
  CAPABILITY_PROBES,
  CLIENT_CAPABILITY_NAMES,
  type ClientCapabilityName,
} from "../../policies/client-capabilities.ts";
import { toolLevel } from "../../policies/tool-level.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const ANNOTATION_KEYS = ["title", "readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] as const;

function pickAnnotations(raw: unknown): ToolAnnotations {
  const out: Record<string, unknown> = {};
  if (raw && typeof raw === "object") {
    for (const key of ANNOTATION_KEYS) {
      const value = (raw as Record<string, unknown>)[key];
      if (value !== undefined) out[key] = value;
    }
  }
  return out as ToolAnnotations;
}

type SnapshotTool = ServerSnapshot["tools"][string];

/**
 * Starts the real server over stdio (the same argv the bridge uses) and lists its tools: once declaring
 * every client capability (what the bridge declares, container/src/handshake.ts: the full set), once
 * declaring none; when the two differ, once more per capability, to record which tools need which
 * (`needs`, policies/client-capabilities.ts).
 */
export async function readServerSnapshot(id: ServerId): Promise<ServerSnapshot> {
  const full = await listServerTools(id, ALL_CLIENT_CAPABILITIES);
  const bare = await listServerTools(id, {});
  const gated = Object.keys(full.tools).filter((name) => !Object.hasOwn(bare.tools, name));
  const needs = new Map<string, ClientCapabilityName[]>();
  if (gated.length > 0) {
    for (const capability of CLIENT_CAPABILITY_NAMES) {
      const probe = await listServerTools(id, CAPABILITY_PROBES[capability]);
      for (const name of gated) {
        if (Object.hasOwn(probe.tools, name)) needs.set(name, [...(needs.get(name) ?? []), capability]);
      }
    }
  }
  const tools: Record<string, SnapshotTool> = {};
  for (const [name, tool] of Object.entries(full.tools)) {
    if (!gated.includes(name)) {
      tools[name] = tool;
      continue;
    }
    const any = needs.get(name);
    if (!any) {
      // Listed only for a combination of capabilities: `needs` (any one of) cannot say that.
      throw new Error(`${id}'s tool ${name} is listed only to a client with several capabilities at once`);
    }
    tools[name] = { ...tool, needs: [...any].sort() };
  }
  return { server: full.server, tools };
}

/** The server's tools as it lists them to a client that declared `capabilities` (started fresh over stdio). */
export async function listServerTools(
  id: ServerId,
  capabilities: Readonly<Record<string, unknown>>,
): Promise<{ server: ServerSnapshot["server"]; tools: Record<string, SnapshotTool> }> {
  const entry: CatalogEntry = catalog[id];
  const dataDir = await mkdtemp(path.join(tmpdir(), `hatago-snapshot-${id}-`));
  const ctx = {
    appRoot: REPO_ROOT,
    dataDir,
    parentEnv: process.env,
    nodePath: process.execPath,
    pythonPath: findOnPath("python3", process.env.PATH),
  };
  const missing = missingFor(entry, ctx);
  if (missing !== null) throw new Error(`cannot read ${id}'s tools on this machine: ${missing}`);
  const spec = launchSpec(entry, ctx);
  const transport = new StdioClientTransport({
    command: spec.command,
    args: [...spec.args],
    env: { ...spec.env },
    cwd: spec.cwd,
    stderr: "ignore",
  });
  const client = new Client({ name: "hatago-catalog-snapshot", version: "1.0.0" }, { capabilities });
  if (capabilities.roots !== undefined) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [] }));
  try {
    await client.connect(transport);
    const info = client.getServerVersion();
    const tools: Record<string, SnapshotTool> = {};
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor ? { cursor } : {});
      for (const tool of page.tools) {
        const annotations = pickAnnotations(tool.annotations);
        tools[tool.name] = { annotations, level: toolLevel(tool.name, annotations, entry.toolLevels) };
      }
      cursor = page.nextCursor;
    } while (cursor);
    return { server: { name: info?.name ?? id, version: info?.version ?? "unknown" }, tools };
  } finally {
    await client.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function readCatalogSnapshot(): Promise<Record<ServerId, ServerSnapshot>> {
  const out = {} as Record<ServerId, ServerSnapshot>;
  for (const id of SERVER_IDS) out[id] = await readServerSnapshot(id);
  return out;
}

/** Renders the generated TypeScript file. Keys are sorted so the output is stable. */
export function renderSnapshotFile(snapshot: Record<string, ServerSnapshot>): string {
  const sortKeys = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (value && typeof value === "object") {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
      );
    }
    return value;
  };
  const body = JSON.stringify(sortKeys(snapshot), null, 2);
  return [
    "// GENERATED by `npm run catalog:snapshot` from the real servers. Do not edit by hand.",
    "// A test fails when a server's tools no longer match this file.",
    'import type { ServerSnapshot } from "./catalog.types.ts";',
    "",
    `export const catalogSnapshot = ${body} as const satisfies Record<string, ServerSnapshot>;`,
    "",
  ].join("\n");
}
