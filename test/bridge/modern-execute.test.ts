import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  BRIDGE_CREDENTIAL_HEADER,
  BRIDGE_ROUTES,
  type ExecuteInputEvent,
  type ExecuteModern,
} from "../../container/src/contract.ts";
import { createLogger } from "../../container/src/log.ts";
import { ModernCall, ModernPort, PendingCalls } from "../../container/src/modern-call.ts";
import { Multiplexer } from "../../container/src/multiplexer.ts";
import { type BridgeProcess, startBridge } from "./harness.ts";

/**
 * `/execute` for 2026-07-28 calls (container/src/modern-call.ts): the answer is a stream, and a call whose
 * server asks its client something (MRTR, basic/patterns/mrtr) waits at the bridge for the client's retry.
 * The real bridge and the real `everything` server; roots, which the bridge never gives a `shared` server,
 * run through a per-user fixture server on a real multiplexer at the end.
 */

let bridge: BridgeProcess;
/** A second bridge whose calls time out after 1.5 s: the wait for input is bounded by the call timeout. */
let quick: BridgeProcess;
beforeAll(async () => {
  [bridge, quick] = await Promise.all([
    startBridge({ HATAGO_BRIDGE_LOG_LEVEL: "debug" }),
    startBridge({ HATAGO_BRIDGE_CALL_TIMEOUT_MS: "1500" }),
  ]);
});
afterAll(async () => {
  await Promise.all([bridge?.stop(), quick?.stop()]);
});

const NONE = { sampling: false, elicitationForm: false, elicitationUrl: false, roots: false };
const ALL = { sampling: true, elicitationForm: true, elicitationUrl: true, roots: true };
const BINDING = "binding-of-the-call-0001";

type Json = Record<string, unknown>;
interface Event {
  readonly event: string;
  readonly data: Json;
}

function modern(options: Partial<ExecuteModern> = {}): ExecuteModern {
  return { caps: NONE, logLevel: null, binding: BINDING, ...options };
}

function toolCall(id: string | number, name: string, args: Json = {}, meta?: Json) {
  return {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
  };
}

async function post(on: BridgeProcess, body: Json, principal = "github:bob", signal?: AbortSignal): Promise<Response> {
  return fetch(`${on.base}${BRIDGE_ROUTES.execute}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      [BRIDGE_CREDENTIAL_HEADER]: await on.mint(principal, String(body.server ?? "everything"), "execute"),
    },
    body: JSON.stringify({ server: "everything", ...body }),
    ...(signal ? { signal } : {}),
  });
}

function eventsOf(text: string): Event[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6) ?? "null";
      return { event, data: JSON.parse(data) as Json };
    });
}

async function events(res: Response): Promise<Event[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/event-stream");
  return eventsOf(await res.text());
}

const inputOf = (list: Event[]) => {
  const last = list.at(-1);
  expect(last?.event).toBe("input");
  return last?.data as unknown as ExecuteInputEvent;
};

const resume = (event: ExecuteInputEvent, responses: Json, extra: Partial<NonNullable<ExecuteModern["resume"]>> = {}) =>
  modern({ caps: ALL, resume: { pending: event.pending, round: event.round, responses, ...extra } });

const textOf = (list: Event[]) => JSON.stringify((list.at(-1)?.data.result as Json | undefined)?.content ?? list);

async function inFlight(on: BridgeProcess): Promise<number> {
  const health = await on.health();
  return (health.servers.everything?.children ?? []).reduce((n, c) => n + c.inFlight, 0);
}

describe("a modern /execute call answers with a stream", () => {
  it("a call that asks nothing: one `response` event with the message's id", async () => {
    const list = await events(
      await post(bridge, { message: toolCall("m-1", "echo", { message: "hi" }), modern: modern() }),
    );
    expect(list).toEqual([
      {
        event: "response",
        data: { jsonrpc: "2.0", id: "m-1", result: { content: [{ type: "text", text: "Echo: hi" }] } },
      },
    ]);
  });

  it("progress for the call arrives before its response, with the caller's token", async () => {
    const message = toolCall(
      2,
      "trigger-long-running-operation",
      { duration: 0.4, steps: 4 },
      { progressToken: "tok" },
    );
    const list = await events(await post(bridge, { message, modern: modern() }));
    const progress = list.filter((e) => e.data.method === "notifications/progress");
    expect(progress.map((e) => e.event)).toEqual(["notification", "notification", "notification", "notification"]);
    expect(progress.map((e) => (e.data.params as Json).progressToken)).toEqual(["tok", "tok", "tok", "tok"]);
    expect(list.at(-1)?.event).toBe("response");
  });

  it("log lines: none for a request without a log level (logging: MUST NOT), some with one", async () => {
    // toggle-simulated-logging logs once at once when it starts; state is the (shared) process's.
    const on = await events(
      await post(bridge, { message: toolCall(3, "toggle-simulated-logging"), modern: modern({ logLevel: "debug" }) }),
    );
    expect(textOf(on)).toContain("Started");
    expect(on.some((e) => e.event === "notification" && e.data.method === "notifications/message")).toBe(true);
    const off = await events(
      await post(bridge, { message: toolCall(4, "toggle-simulated-logging"), modern: modern() }),
    );
    expect(textOf(off)).toContain("Stopped");
    expect(off.filter((e) => e.event === "notification")).toEqual([]);
  });

  it("a log level filters: below it nothing is relayed (ModernPort.acceptsLog)", () => {
    const port = new ModernPort("github:bob", modern({ logLevel: "error" }));
    expect(port.acceptsLog("warning")).toBe(false);
    expect(port.acceptsLog("error")).toBe(true);
    expect(port.acceptsLog("emergency")).toBe(true);
    expect(new ModernPort("github:bob", modern()).acceptsLog("emergency")).toBe(false);
  });
});

describe("MRTR through the bridge: the call waits for its client's answer (basic/patterns/mrtr)", () => {
  it("elicitation: an `input` event carries the child's request; the retry's answer reaches it; the call completes", async () => {
    const first = await events(
      await post(bridge, {
        message: toolCall("leg-1", "trigger-elicitation-request"),
        modern: modern({ caps: { ...NONE, elicitationForm: true } }),
      }),
    );
    const input = inputOf(first);
    expect(input.round).toBe(1);
    const [key, request] = Object.entries(input.requests)[0] ?? [];
    expect(request?.method).toBe("elicitation/create");
    expect((request?.params as Json | undefined)?.requestedSchema).toBeDefined();
    // The call is still in flight toward the child while the client is away.
    expect(await inFlight(bridge)).toBe(1);

    const second = await events(
      await post(bridge, {
        message: toolCall("leg-2", "trigger-elicitation-request"),
        modern: resume(input, { [String(key)]: { action: "accept", content: { name: "Ada Lovelace" } } }),
      }),
    );
    expect(second.at(-1)).toMatchObject({ event: "response", data: { id: "leg-2" } });
    expect(textOf(second)).toContain("Name: Ada Lovelace");
    expect(await inFlight(bridge)).toBe(0);
  });

  it("sampling: the same, with the client's message as the child's answer", async () => {
    const first = await events(
      await post(bridge, {
        message: toolCall(10, "trigger-sampling-request", { prompt: "say hi" }),
        modern: modern({ caps: { ...NONE, sampling: true } }),
      }),
    );
    const input = inputOf(first);
    const [key, request] = Object.entries(input.requests)[0] ?? [];
    expect(request?.method).toBe("sampling/createMessage");
    expect(JSON.stringify(request?.params)).toContain("say hi");
    const answer = { role: "assistant", content: { type: "text", text: "sampled hi" }, model: "test-model" };
    const second = await events(
      await post(bridge, {
        message: toolCall(11, "trigger-sampling-request"),
        modern: resume(input, { [String(key)]: answer }),
      }),
    );
    expect(textOf(second)).toContain("sampled hi");
  });

  it("a retry without the answer asks again (mrtr, Error Handling): a new round with the same request", async () => {
    const caps = { ...NONE, elicitationForm: true };
    const input = inputOf(
      await events(
        await post(bridge, { message: toolCall(20, "trigger-elicitation-request"), modern: modern({ caps }) }),
      ),
    );
    const again = inputOf(
      await events(
        await post(bridge, { message: toolCall(21, "trigger-elicitation-request"), modern: resume(input, {}) }),
      ),
    );
    expect(again.pending).toBe(input.pending);
    expect(again.round).toBe(2);
    expect(Object.keys(again.requests)).toEqual(Object.keys(input.requests));
    const key = Object.keys(again.requests)[0] ?? "";
    const done = await events(
      await post(bridge, {
        message: toolCall(22, "trigger-elicitation-request"),
        modern: resume(again, { [key]: { action: "decline" } }),
      }),
    );
    expect(textOf(done).toLowerCase()).toContain("declined");
  });

  it("roots are never asked for a shared server, even of a client that declared them (routing.ts)", async () => {
    const list = await events(
      await post(bridge, {
        message: toolCall(31, "get-roots-list"),
        modern: modern({ caps: { ...NONE, roots: true } }),
      }),
    );
    expect(list.map((e) => e.event)).toEqual(["response"]);
    expect(textOf(list)).toContain("no roots");
  });

  it("a client that did not declare the capability is not asked: the child's request gets an error", async () => {
    const list = await events(
      await post(bridge, { message: toolCall(30, "trigger-sampling-request", { prompt: "x" }), modern: modern() }),
    );
    expect(list.map((e) => e.event)).toEqual(["response"]);
    expect(JSON.stringify(list[0]?.data)).toContain("did not declare this capability");
  });
});

describe("hostile: a waiting call is resumed by its caller alone, once per round, before its deadline", () => {
  const waitingCall = async (principal = "github:bob") => {
    const caps = { ...NONE, elicitationForm: true };
    const input = inputOf(
      await events(
        await post(
          bridge,
          { message: toolCall(40, "trigger-elicitation-request"), modern: modern({ caps }) },
          principal,
        ),
      ),
    );
    return { input, key: Object.keys(input.requests)[0] ?? "" };
  };
  const notWaiting = async (res: Response) => {
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: "call_not_waiting", message: "no call is waiting for this input" },
    });
  };

  it("another principal's credential, another binding, a stale round, an unknown id: one 404; the caller still resumes", async () => {
    const { input, key } = await waitingCall();
    const answers = { [key]: { action: "accept", content: { name: "Mallory" } } };
    const message = toolCall(41, "trigger-elicitation-request");
    await notWaiting(await post(bridge, { message, modern: resume(input, answers) }, "github:alice"));
    await notWaiting(
      await post(bridge, { message, modern: { ...resume(input, answers), binding: "another-binding-000001" } }),
    );
    await notWaiting(await post(bridge, { message, modern: resume({ ...input, round: 2 }, answers) }));
    await notWaiting(await post(bridge, { message, modern: resume({ ...input, pending: "A".repeat(22) }, answers) }));
    const own = await events(
      await post(bridge, { message, modern: resume(input, { [key]: { action: "accept", content: { name: "Bob" } } }) }),
    );
    expect(textOf(own)).toContain("Name: Bob");
    expect(textOf(own)).not.toContain("Mallory");
  });

  it("a round is answered once: replaying the retry that completed the call is a 404", async () => {
    const { input, key } = await waitingCall();
    const body = {
      message: toolCall(42, "trigger-elicitation-request"),
      modern: resume(input, { [key]: { action: "decline" } }),
    };
    await events(await post(bridge, body));
    await notWaiting(await post(bridge, body));
  });

  it("a refused retry cancels the waiting call (the Worker's `cancel`): the child's request gets an error", async () => {
    const { input } = await waitingCall();
    const res = await post(bridge, {
      message: toolCall(43, "trigger-elicitation-request"),
      modern: resume(input, {}, { cancel: true }),
    });
    expect(res.status).toBe(204);
    expect(await inFlight(bridge)).toBe(0);
    await notWaiting(
      await post(bridge, { message: toolCall(44, "trigger-elicitation-request"), modern: resume(input, {}) }),
    );
  });

  it("after the call timeout the call is gone: the child was answered and cancelled, a late retry is a 404", async () => {
    const caps = { ...NONE, elicitationForm: true };
    const first = await events(
      await post(quick, { message: toolCall(50, "trigger-elicitation-request"), modern: modern({ caps }) }),
    );
    const input = inputOf(first);
    await quick.waitForLog((l) => l.event === "modern.input_timed_out", 5_000);
    expect(await inFlight(quick)).toBe(0);
    const key = Object.keys(input.requests)[0] ?? "";
    const late = await post(quick, {
      message: toolCall(51, "trigger-elicitation-request"),
      modern: resume(input, { [key]: { action: "accept", content: { name: "too late" } } }),
    });
    await notWaiting(late);
  });

  it("a malformed `modern` member is a 400 that names the field", async () => {
    for (const [bad, field] of [
      [{ ...modern(), caps: { ...NONE, extra: true } }, "modern.caps.extra"],
      [{ ...modern(), logLevel: "loud" }, "modern.logLevel"],
      [{ ...modern(), binding: "x" }, "modern.binding"],
      [{ ...modern(), resume: { pending: "short", round: 1, responses: {} } }, "modern.resume.pending"],
      [{ ...modern(), command: "sh" }, "modern.command"],
    ] as const) {
      const res = await post(bridge, { message: toolCall(60, "echo", { message: "x" }), modern: bad });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("invalid_modern");
      expect(body.error.message).toContain(field);
    }
  });
});

describe("closing the stream cancels the call toward the child (streamable-http, Cancellation)", () => {
  it("the bridge sends notifications/cancelled to the child and the call leaves at once", async () => {
    const controller = new AbortController();
    const message = toolCall(70, "trigger-long-running-operation", { duration: 20, steps: 40 }, { progressToken: 1 });
    const res = await post(bridge, { message, modern: modern() }, "github:bob", controller.signal);
    const reader = res.body?.getReader();
    // The first progress event: the call is running in the child.
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain("notifications/progress");
    expect(await inFlight(bridge)).toBe(1);
    const since = bridge.logs.length;
    controller.abort();
    const cancelled = await bridge.waitForLog(
      (l) => bridge.logs.indexOf(l) >= since && l.event === "call.cancelled" && l.reason === "client disconnected",
      5_000,
    );
    expect(cancelled.child).toMatch(/^everything/);
    expect(await inFlight(bridge)).toBe(0);
  });
});

/**
 * Roots: the bridge refuses `roots/list` to a `shared` server (test/bridge/multiplexer.test.ts), and every
 * catalog server that asks for roots is `shared` (`everything`). So roots through MRTR run here on a real
 * multiplexer of a per-user fixture server (test/bridge/fixtures, never in the catalog) behind a small HTTP
 * server that does what handleExecute does for a modern call.
 */
describe("roots through MRTR (a per-user server)", () => {
  const FIXTURE = fileURLToPath(new URL("./fixtures/misbehaving-server.ts", import.meta.url));
  let server: Server | undefined;
  let mux: Multiplexer | undefined;
  afterEach(async () => {
    await mux?.stop("test done");
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it("the child's roots/list goes to the client as an input request, and its roots come back", async () => {
    const log = createLogger("error");
    mux = new Multiplexer({
      label: "fixture#1",
      isolation: "per-user",
      log,
      callTimeoutMs: 5_000,
      idleTimeoutMs: 60_000,
      counters: { inFlight: 0 },
      onIdleStop: () => {},
      supervisor: {
        maxLineBytes: 1024 * 1024,
        stopGraceMs: 200,
        spec: async () => ({ command: process.execPath, args: [FIXTURE], env: {}, cwd: tmpdir() }),
      },
    });
    await mux.ready();
    const registry = new PendingCalls();
    const running = mux;
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        const { message, modern: options } = JSON.parse(body) as { message: Json; modern: ExecuteModern };
        const id = message.id as number;
        if (options.resume) {
          const waiting = registry.find(
            options.resume.pending,
            "alice",
            "fixture",
            options.binding,
            options.resume.round,
          );
          if (!waiting) return void res.writeHead(404).end();
          return waiting.resume(res, id, { ...options, resume: options.resume });
        }
        const port = new ModernPort("alice", options);
        const call = new ModernCall({
          mux: running,
          port,
          server: "fixture",
          binding: options.binding,
          clientId: id,
          callTimeoutMs: 5_000,
          registry,
          log,
        });
        call.attach(res);
        running.call(port, id, "tools/call", message, undefined, call);
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const send = async (body: Json) =>
      eventsOf(await (await fetch(base, { method: "POST", body: JSON.stringify(body) })).text());

    const message = toolCall(1, "ask-roots");
    const input = inputOf(await send({ message, modern: modern({ caps: { ...NONE, roots: true } }) }));
    const [key, request] = Object.entries(input.requests)[0] ?? [];
    expect(request?.method).toBe("roots/list");
    const roots = { roots: [{ uri: "file:///home/alice/project", name: "project" }] };
    const done = await send({ message: toolCall(2, "ask-roots"), modern: resume(input, { [String(key)]: roots }) });
    expect(done.at(-1)).toMatchObject({ event: "response", data: { id: 2 } });
    expect(textOf(done)).toContain("file:///home/alice/project");
  });
});
