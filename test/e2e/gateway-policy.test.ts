import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_CLIENT_CAPABILITIES,
  type ClientCapabilityName,
  declaredCapabilities,
} from "../../policies/client-capabilities.ts";
import { compilePolicy, POLICIES, type Policy, seedSql } from "../../policies/index.ts";
import { listServerTools } from "../../scripts/lib/server-tools.ts";
import { DECISION_FACTS_MAX_AGE_MS } from "../../worker/authz/decision-cache.ts";
import { d1Execute } from "./helpers/d1.ts";
import { type Connected, callError, connectAs } from "./helpers/mcp-client.ts";
import { DemoOAuthProvider, type DemoPerson } from "./helpers/oauth-flow.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

// Ports 18510–18512.
let stack: TestStack;
const sessions = new Map<DemoPerson, Connected>();

async function as(person: DemoPerson): Promise<Connected> {
  let s = sessions.get(person);
  if (!s) {
    s = await connectAs(stack.url, person);
    sessions.set(person, s);
  }
  return s;
}

beforeAll(async () => {
  stack = await startTestStack(18510);
});

afterAll(async () => {
  for (const s of sessions.values()) await s.client.close().catch(() => {});
  await stack?.dispose();
});

const EVERYTHING_READ = [
  "everything__echo",
  "everything__get-annotated-message",
  "everything__get-resource-links",
  "everything__get-resource-reference",
  "everything__get-roots-list",
  "everything__get-structured-content",
  "everything__get-sum",
  "everything__get-tiny-image",
  "everything__trigger-long-running-operation",
];
const EVERYTHING_WRITE = [
  "everything__simulate-research-query",
  "everything__toggle-simulated-logging",
  "everything__toggle-subscriber-updates",
  "everything__trigger-elicitation-request",
  "everything__trigger-sampling-request",
  "everything__trigger-url-elicitation",
];
const MEMORY_READ = ["memory__open_nodes", "memory__read_graph", "memory__search_nodes"];
const MEMORY_WRITE = [
  "memory__add_observations",
  "memory__create_entities",
  "memory__create_relations",
  "memory__delete_entities",
  "memory__delete_observations",
  "memory__delete_relations",
];

/** What each demo person may call under policies/environments/dev.ts, written out by hand. */
const EXPECTED: Record<DemoPerson, string[]> = {
  alice: [
    "execute_stdio",
    ...EVERYTHING_READ,
    ...EVERYTHING_WRITE,
    "everything__get-env",
    "everything__gzip-file-as-resource",
    ...MEMORY_READ,
    ...MEMORY_WRITE,
    "notes__add_note",
    "notes__crash",
    "notes__list_notes",
    "whoami-upstream__whoami",
  ],
  bob: [
    ...EVERYTHING_READ,
    ...EVERYTHING_WRITE,
    ...MEMORY_READ,
    ...MEMORY_WRITE,
    "notes__add_note",
    "notes__list_notes",
    "whoami-upstream__whoami",
  ],
  carol: [...EVERYTHING_READ, ...MEMORY_READ, "notes__list_notes", "whoami-upstream__whoami"],
  dave: [],
  erin: ["everything__echo", "everything__get-sum", "everything__simulate-research-query"],
  frank: ["execute_stdio", ...MEMORY_READ, ...MEMORY_WRITE],
};
const ALL_TOOLS = [...new Set(Object.values(EXPECTED).flat())];

/**
 * The tools `everything` offers only to a client that can answer its requests, written out by hand (the
 * catalog snapshot records the same, read from the server: policies/catalog.snapshot.ts, `needs`).
 */
const GATED: Record<string, readonly ClientCapabilityName[]> = {
  "everything__get-roots-list": ["roots"],
  "everything__trigger-elicitation-request": ["elicitation.form", "elicitation.url"],
  "everything__trigger-sampling-request": ["sampling"],
  "everything__trigger-url-elicitation": ["elicitation.url"],
};
/** What a client that declared no sampling, elicitation or roots may use (the matrix's client declares none). */
const usableWithout = (names: readonly string[]) => names.filter((n) => !Object.hasOwn(GATED, n));

/** Arguments that make each tool finish quickly and harmlessly (validation errors are fine: they are not denials). */
const SAFE_ARGS: Record<string, Record<string, unknown>> = {
  everything__echo: { message: "matrix" },
  notes__add_note: { text: "matrix" },
  "everything__get-sum": { a: 1, b: 2 },
  "everything__trigger-long-running-operation": { duration: 0.2, steps: 1 },
  "everything__gzip-file-as-resource": {},
  execute_stdio: { server: "memory", message: { jsonrpc: "2.0", id: 1, method: "ping" } },
};

const notFound = (name: string) => ({ code: -32602, message: `MCP error -32602: Tool ${name} not found` });

describe("the permission matrix of the dev policy (tools/list and tools/call)", () => {
  for (const person of Object.keys(EXPECTED) as DemoPerson[]) {
    it(`${person}: tools/list is exactly the permitted set, and every call is allowed or denied as the policy says`, async () => {
      // This client declared no sampling, elicitation or roots: the tools that need one are not its to use.
      const { client } = await as(person);
      const usable = usableWithout(EXPECTED[person]);
      const listed = (await client.listTools()).tools.map((t) => t.name).sort();
      expect(listed).toEqual([...usable].sort());
      for (const name of ALL_TOOLS) {
        const error = await callError(client, name, SAFE_ARGS[name] ?? {});
        if (usable.includes(name)) expect(error, `${person} may call ${name}`).not.toEqual(notFound(name));
        else expect(error, `${person} may not call ${name}`).toEqual(notFound(name));
      }
    });
  }

  it("listed tools keep their schemas and annotations, under the server prefix", async () => {
    const { client } = await as("carol");
    const echo = (await client.listTools()).tools.find((t) => t.name === "everything__echo");
    expect(echo?.inputSchema.properties).toHaveProperty("message");
    expect(echo?.annotations?.readOnlyHint).toBe(true);
  });

  it("execute_stdio needs execute on that very server (frank: memory only)", async () => {
    const { client } = await as("frank");
    const ok = await client.callTool({
      name: "execute_stdio",
      arguments: { server: "memory", message: { jsonrpc: "2.0", id: 7, method: "tools/list" } },
    });
    expect(JSON.stringify(ok.structuredContent)).toContain("read_graph");
    expect(
      await callError(client, "execute_stdio", {
        server: "everything",
        message: { jsonrpc: "2.0", id: 1, method: "ping" },
      }),
    ).toEqual(notFound("execute_stdio"));
    // Only a server id and one JSON-RPC request: no command, args, env or cwd can be smuggled in.
    const smuggled = await callError(client, "execute_stdio", {
      server: "memory",
      message: { jsonrpc: "2.0", id: 1, method: "ping" },
      command: "sh",
    });
    expect(smuggled?.message).toContain("Invalid arguments for execute_stdio");
  });
});

describe("a client sees what it can use (legacy sessions: the client's initialize capabilities)", () => {
  const PROBES: Record<string, Record<string, unknown>> = {
    none: {},
    sampling: { sampling: {} },
    "elicitation (form)": { elicitation: { form: {} } },
    "elicitation (url)": { elicitation: { url: {} } },
    roots: { roots: {} },
    "all of them": ALL_CLIENT_CAPABILITIES,
  };
  for (const [label, capabilities] of Object.entries(PROBES)) {
    it(`bob declaring ${label}: listed what the server itself lists to such a client, less what the policy refuses`, async () => {
      const bob = await connectAs(stack.url, "bob", { clientOptions: { capabilities } });
      try {
        const direct = await listServerTools("everything", capabilities);
        const expected = Object.keys(direct.tools)
          .map((t) => `everything__${t}`)
          .filter((n) => EXPECTED.bob.includes(n))
          .sort();
        const listed = (await bob.client.listTools()).tools
          .map((t) => t.name)
          .filter((n) => n.startsWith("everything__"));
        expect(listed.sort()).toEqual(expected);
        // The hand-written gating agrees: a gated tool is listed exactly when one capability it needs was declared.
        const declared = declaredCapabilities(capabilities);
        for (const [name, needs] of Object.entries(GATED)) {
          expect(listed.includes(name), name).toBe(needs.some((n) => declared.has(n)));
        }
        // A gated tool this client cannot use is refused as one that does not exist.
        for (const name of Object.keys(GATED).filter((n) => !listed.includes(n))) {
          expect(await callError(bob.client, name, {})).toEqual(notFound(name));
        }
      } finally {
        await bob.client.close();
      }
    });
  }

  it("a client that declared nothing is listed what talking to the server directly with nothing lists (13, not 17)", async () => {
    const direct = await listServerTools("everything", {});
    const full = await listServerTools("everything", ALL_CLIENT_CAPABILITIES);
    expect(Object.keys(full.tools).length - Object.keys(direct.tools).length).toBe(Object.keys(GATED).length);
    const { client } = await as("alice");
    const listed = (await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith("everything__"));
    expect(listed.sort()).toEqual(
      Object.keys(direct.tools)
        .map((t) => `everything__${t}`)
        .sort(),
    );
  });
});

describe("bypass attempts are answered exactly like a tool that does not exist", () => {
  const variants = [
    "Everything__echo",
    "EVERYTHING__ECHO",
    "everything__Echo",
    "everything__echо", // Cyrillic о
    "ｅverything__echo", // fullwidth e
    "everything＿＿echo", // fullwidth low lines
    "every\u200bthing__echo", // zero-width space
    "everything__echo\u0000",
    " everything__echo",
    "everything_echo",
    "everything:echo",
    "everything/echo",
    "../everything__echo",
    "everything/../memory__read_graph",
    "everything%5F%5Fecho",
    "%65verything__echo",
    "__echo",
    "everything__",
  ];
  for (const name of variants) {
    it(`case, Unicode, encoding and path variants: ${JSON.stringify(name)}`, async () => {
      const { client } = await as("carol");
      expect(await callError(client, name, { message: "x" })).toEqual(notFound(name));
    });
  }

  it("an unlisted tool of a server the caller can use (bob and get-env) is not found", async () => {
    const { client } = await as("bob");
    expect(await callError(client, "everything__get-env")).toEqual(notFound("everything__get-env"));
    expect(await callError(client, "everything__no-such-tool")).toEqual(notFound("everything__no-such-tool"));
  });

  it("a spoofed prefix or another server's id does not reach another server (erin)", async () => {
    const { client } = await as("erin");
    for (const name of [
      "memory__read_graph",
      "memory__everything__echo",
      "everything__memory__read_graph",
      "everything__everything__echo",
    ]) {
      expect(await callError(client, name, { message: "x" })).toEqual(notFound(name));
    }
  });

  it("a session id of another user is unknown (404)", async () => {
    const bob = await as("bob");
    const carol = await as("carol");
    const bobSession = (bob.transport as { sessionId?: string }).sessionId;
    expect(bobSession).toBeTruthy();
    const res = await fetch(`${stack.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${carol.token()}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": bobSession ?? "",
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(404);
    // Bob's own session still works.
    expect((await bob.client.listTools()).tools.length).toBe(usableWithout(EXPECTED.bob).length);
  });

  it("a policy re-seed that removes a grant takes effect within the decision facts' bound (1 s)", async () => {
    // Direct tool calls may reuse what their isolate read for up to DECISION_FACTS_MAX_AGE_MS (issue 18):
    // the stack cannot be put on a test clock, so the test waits the bound out after each seed.
    const reseed = async (policy: Policy) => {
      await d1Execute(stack.stateDir, seedSql(await compilePolicy(policy)));
      await new Promise((resolve) => setTimeout(resolve, DECISION_FACTS_MAX_AGE_MS));
    };
    const { client } = await as("bob");
    expect(await callError(client, "memory__read_graph")).toBeNull();
    const narrowed: Policy = {
      ...POLICIES.dev,
      bindings: POLICIES.dev.bindings.filter((b) => b.subject !== "mock:bob"),
    };
    await reseed(narrowed);
    try {
      expect(await callError(client, "memory__read_graph")).toEqual(notFound("memory__read_graph"));
      expect((await client.listTools()).tools).toEqual([]);
    } finally {
      await reseed(POLICIES.dev);
    }
    expect(await callError(client, "memory__read_graph")).toBeNull();
  });
});

describe("rate limits of roles (per principal, across sessions)", () => {
  it("a role's calls-per-minute limit refuses the next call, audited, until the minute has passed", async () => {
    const limited: Policy = {
      ...POLICIES.dev,
      roles: {
        ...POLICIES.dev.roles,
        limited: {
          description: "echo, three times a minute",
          grants: [{ server: "everything", level: "read", allow: ["echo"] }],
          rateLimitPerMinute: 3,
        },
      },
      bindings: [...POLICIES.dev.bindings, { subject: "group:mock:ratelimited", roles: ["limited"] }],
    };
    await d1Execute(stack.stateDir, seedSql(await compilePolicy(limited)));
    try {
      // Dave has no role of his own and makes no other call in this file, so the count starts at zero.
      const first = await connectAs(stack.url, "dave", {
        provider: new DemoOAuthProvider("dave", "e2e dave limited", "ratelimited"),
      });
      const second = await connectAs(stack.url, "dave", {
        provider: new DemoOAuthProvider("dave", "e2e dave again", "ratelimited"),
      });
      try {
        for (let i = 0; i < 3; i++)
          expect(await callError(first.client, "everything__echo", { message: `call ${i}` })).toBeNull();
        const refused = await callError(first.client, "everything__echo", { message: "one too many" });
        expect(refused?.code).toBe(-32029);
        expect(refused?.message).toContain("Rate limit reached: your roles allow 3 calls per minute");
        // Another session of the same principal shares the limit.
        expect((await callError(second.client, "everything__echo", { message: "other session" }))?.code).toBe(-32029);
        const alice = await as("alice");
        // Rows reach D1 from dave's ledger just after the answers (worker/audit/ledger.ts): ask until both are there.
        const refusals = async () => {
          const res = await fetch(`${stack.url}/admin/audit?principal=mock:dave&decision=deny`, {
            headers: { authorization: `Bearer ${alice.token()}` },
          });
          return ((await res.json()) as { rows: { reason: string }[] }).rows.filter((r) => r.reason === "rate_limited");
        };
        await expect.poll(refusals, { timeout: 5_000 }).toHaveLength(2);
      } finally {
        await first.client.close();
        await second.client.close();
      }
    } finally {
      await d1Execute(stack.stateDir, seedSql(await compilePolicy(POLICIES.dev)));
    }
  });
});
