import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { meterD1, meterDurableObjects, meterKv, meterReset, meterSnapshot, meterStorage } from "./meter.ts";

// The bench's cost count (bench/RESULTS.md) is only as good as these wrappers: each must count exactly the
// operations that reach the real binding, and change nothing about them.
const count = (kind: string) => meterSnapshot()[kind]?.count ?? 0;

describe("cost meter: counts what reaches the real bindings, results unchanged", () => {
  beforeEach(() => meterReset());

  it("D1: each executed statement counts once, as a read or a write by its verb; a prepared one never run does not", async () => {
    const db = meterD1(env.DB);
    await db.prepare("INSERT INTO policy_meta (key, value) VALUES (?, ?)").bind("bench", "x").run();
    const row = await db
      .prepare("SELECT value FROM policy_meta WHERE key = ?")
      .bind("bench")
      .first<{ value: string }>();
    expect(row).toEqual({ value: "x" });
    const { results } = await db.prepare("SELECT key FROM policy_meta WHERE key = ?").bind("bench").all();
    expect(results).toEqual([{ key: "bench" }]);
    db.prepare("DELETE FROM policy_meta");
    expect(count("d1.write")).toBe(1);
    expect(count("d1.read")).toBe(2);
  });

  it("KV: reads, writes and deletes are told apart; values pass through", async () => {
    const kv = meterKv(env.OAUTH_KV);
    await kv.put("bench:k", "v");
    expect(await kv.get("bench:k")).toBe("v");
    expect(await kv.get("bench:missing")).toBeNull();
    await kv.delete("bench:k");
    expect([count("kv.write"), count("kv.read"), count("kv.delete")]).toEqual([1, 2, 1]);
  });

  it("Durable Objects: each stub fetch is one request; storage operations are counted as reads and writes", async () => {
    const sessions = meterDurableObjects(env.MCP_SESSIONS, "session");
    const stub = sessions.get(sessions.idFromName("bench-meter"));
    // Without the Worker's internal header the session object refuses the request, but it was one request.
    const res = await stub.fetch("http://session/mcp");
    await res.body?.cancel();
    expect(res.status).toBe(500);
    expect(count("do.session.fetch")).toBe(1);

    const raw = env.MCP_SESSIONS.get(env.MCP_SESSIONS.idFromName("bench-meter"));
    await runInDurableObject(raw, async (_instance, state) => {
      meterStorage(state.storage, "probe");
      await state.storage.put("k", 1);
      expect(await state.storage.get("k")).toBe(1);
      await state.storage.deleteAll();
    });
    expect([count("do.probe.storage.read"), count("do.probe.storage.write")]).toEqual([1, 2]);
  });
});
