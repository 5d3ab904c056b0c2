// Any runtime and secrets through the whole local gateway (issue 13). Ports 18610–18612.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_SECRETS_FILE } from "../../scripts/lib/local-secrets.ts";
import type { LocalStack } from "../../scripts/lib/local-stack.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { getWithToken } from "./helpers/oauth-http.ts";
import { startStackIn, tempStateDir } from "./helpers/test-stack.ts";

const BASE = 18_610;
const SECRET = "e2e-demo-secret-9c41d7";

const textOf = (result: unknown) =>
  ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? "").join("\n");

let state: Awaited<ReturnType<typeof tempStateDir>>;
let stack: LocalStack;
let logs: string[];
const opened: Connected[] = [];
async function as(person: "alice" | "bob" | "carol"): Promise<Connected> {
  const c = await connectAs(stack.url, person);
  opened.push(c);
  return c;
}

beforeAll(async () => {
  state = await tempStateDir("runtimes");
  // The local secrets file: one declared secret, and a line naming a secret nobody declares.
  await writeFile(
    path.join(state.dir, LOCAL_SECRETS_FILE),
    `# local secrets\neverything.HATAGO_DEMO_SECRET=${SECRET}\nmemory.NOT_DECLARED=leak-me-not\n`,
    { mode: 0o600 },
  );
  ({ stack, logs } = await startStackIn(BASE, state.dir));
}, 180_000);
afterAll(async () => {
  for (const c of opened) await c.client.close().catch(() => {});
  await stack?.stop();
  await state?.remove();
});

describe("a Python server (standard library only) through the whole gateway", () => {
  it("bob lists and calls it under the notes__ prefix, as the policy grants", async () => {
    const bob = await as("bob");
    const names = (await bob.client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith("notes__"));
    expect(names.sort()).toEqual(["notes__add_note", "notes__list_notes"]);
    const stored = await bob.client.callTool({ name: "notes__add_note", arguments: { text: "bob's python note" } });
    expect(textOf(stored)).toBe("stored note 1");
    expect(textOf(await bob.client.callTool({ name: "notes__list_notes", arguments: {} }))).toBe(
      "1. bob's python note",
    );
  });

  it("per-user isolation: carol (read only) sees her own empty notes, and may not write", async () => {
    const carol = await as("carol");
    expect(textOf(await carol.client.callTool({ name: "notes__list_notes", arguments: {} }))).toBe("no notes yet");
    const denied = await callError(carol.client, "notes__add_note", { text: "x" });
    expect(denied?.message).toContain("Tool notes__add_note not found");
  });

  it("crash and restart: alice crashes her notes process; the next call is served by a new one", async () => {
    const alice = await as("alice");
    await alice.client.callTool({ name: "notes__add_note", arguments: { text: "before the crash" } });
    const crashed = await callError(alice.client, "notes__crash", {});
    expect(crashed).not.toBeNull();
    let listed = "";
    for (let attempt = 0; attempt < 40 && !listed.includes("before the crash"); attempt++) {
      try {
        listed = textOf(await alice.client.callTool({ name: "notes__list_notes", arguments: {} }));
      } catch {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    expect(listed).toBe("1. before the crash");
  });
});

describe("secrets reach only their own server, and appear in no log, health or audit output", () => {
  it("everything's get-env (admins) shows its own secret; the undeclared line is ignored by name only", async () => {
    const alice = await as("alice");
    const env = textOf(await alice.client.callTool({ name: "everything__get-env", arguments: {} }));
    expect(env).toContain(SECRET);
    expect(env).not.toContain("leak-me-not");
    expect(logs.some((l) => l.includes("memory.NOT_DECLARED") && l.includes("ignored"))).toBe(true);
  });

  it("the value is in no line the stack printed, not in /health, not in the audit log", async () => {
    const alice = await as("alice");
    const health = await fetch(`${stack.url}/health`).then((r) => r.text());
    const audit = await getWithToken(`${stack.url}/admin/audit?limit=500`, alice.token());
    expect(audit.status).toBe(200);
    for (const [what, text] of [
      ["stack output", logs.join("\n")],
      ["/health", health],
      ["audit log", JSON.stringify(audit.body)],
    ] as const) {
      expect(text, what).not.toContain(SECRET);
      expect(text, what).not.toContain("leak-me-not");
    }
  });
});
