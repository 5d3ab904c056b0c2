import { z } from "zod";

/** How long one DevTools protocol command may take (Profiler.stop serialises the whole profile). */
const COMMAND_TIMEOUT_MS = 30_000;

const Reply = z.object({
  id: z.number(),
  result: z.unknown().optional(),
  error: z.object({ message: z.string() }).optional(),
});
const ScriptParsed = z.object({
  method: z.literal("Debugger.scriptParsed"),
  params: z.object({ scriptId: z.string(), url: z.string() }),
});

/**
 * A DevTools protocol client for wrangler's inspector proxy. The proxy accepts only local origins, and
 * Node's WebSocket sends no Origin unless told (an undici extension of the constructor's second argument).
 */
export class Inspector {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #scripts = new Map<string, string>();
  #next = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener("message", (event) => this.#onMessage(String(event.data)));
  }

  static async connect(url: string): Promise<Inspector> {
    const ws: WebSocket = Reflect.construct(WebSocket, [url, { headers: { Origin: "http://localhost" } }]);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`cannot open the inspector at ${url}`)), { once: true });
    });
    return new Inspector(ws);
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer in ${COMMAND_TIMEOUT_MS} ms`));
      }, COMMAND_TIMEOUT_MS);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The source of every script the isolate has parsed, by script id (for mapping lines to modules). */
  async bundleSources(): Promise<Map<string, string>> {
    await this.send("Debugger.enable");
    const sources = new Map<string, string>();
    for (const scriptId of this.#scripts.keys()) {
      const reply = z
        .object({ scriptSource: z.string() })
        .safeParse(await this.send("Debugger.getScriptSource", { scriptId }));
      if (reply.success) sources.set(scriptId, reply.data.scriptSource);
    }
    await this.send("Debugger.disable");
    return sources;
  }

  close(): void {
    this.#ws.close();
  }

  #onMessage(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const parsed = ScriptParsed.safeParse(message);
    if (parsed.success) {
      this.#scripts.set(parsed.data.params.scriptId, parsed.data.params.url);
      return;
    }
    // workerd answers some commands (Profiler.enable, Profiler.start) by echoing them without a `result`:
    // any message with the id of a command we sent is its answer. The proxy's own ids start at 1e8.
    const reply = Reply.safeParse(message);
    if (!reply.success) return;
    const waiter = this.#pending.get(reply.data.id);
    if (!waiter) return;
    this.#pending.delete(reply.data.id);
    if (reply.data.error) waiter.reject(new Error(reply.data.error.message));
    else waiter.resolve(reply.data.result);
  }
}
