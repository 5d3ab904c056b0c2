import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { compilePolicy, POLICIES, type Policy } from "../../policies/index.ts";
import {
  DECISION_FACTS_MAX_AGE_MS,
  DecisionCache,
  decisionCache,
  wasReused,
} from "../../worker/authz/decision-cache.ts";
import { type Caller, loadRequestContext } from "../../worker/authz/request-context.ts";
import { database } from "../../worker/db/database.ts";
import { recordBackend, recordSession } from "../../worker/db/sessions.repository.ts";
import { HttpError } from "../../worker/http/errors.ts";
import { meterD1, meterReset, meterSnapshot } from "./metering/meter.ts";
import { Browser } from "./oauth/harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./oauth/harness/flow.ts";
import { OAuthTestClient, ORIGIN } from "./oauth/harness/oauth-client.ts";
import { viaDefaultExport } from "./oauth/harness/workers.ts";

/**
 * Issue 18, goal 2: tool calls on the direct path reuse the facts they are decided on (grants, standing,
 * policy hash, the session record) for at most DECISION_FACTS_MAX_AGE_MS after reading them from D1's
 * primary. What must still hold: a block, a revocation and a policy re-seed take
 * effect within that bound on every isolate (here: a cache on a clock the test moves; D1 written directly,
 * as another isolate or the deploy's seed writes it), and at once in the isolate that made the block.
 */
const BOUND = DECISION_FACTS_MAX_AGE_MS;

let clock = 0;
const cacheOnTestClock = () => new DecisionCache(BOUND, () => clock);

const bob: Caller = {
  principal: "mock:bob",
  subjects: ["mock:bob", "email:bob@example.com"],
  clientId: null,
  authenticatedAtMs: 1_000,
};

/** D1 as the Worker gets it, counting the statements that reach it. */
const meteredDb = () => database(meterD1(env.DB));
const d1Reads = () => meterSnapshot()["d1.read"]?.count ?? 0;

async function seed(policy: Policy): Promise<void> {
  await env.DB.batch((await compilePolicy(policy)).statements.map((s) => env.DB.prepare(s)));
}

async function insertBlock(subject: string): Promise<void> {
  await env.DB.prepare("INSERT INTO blocks (subject, reason, blocked_by, blocked_at_ms) VALUES (?, ?, ?, ?)")
    .bind(subject, "test", "mock:alice", 1)
    .run();
}

async function refusal(load: Promise<unknown>): Promise<HttpError> {
  const error = await load.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(error instanceof HttpError)) throw new Error(`expected a HttpError, got ${String(error)}`);
  return error;
}

beforeEach(async () => {
  clock = 1_000_000;
  meterReset();
  decisionCache.forget();
  await seed(POLICIES.dev);
});

describe("a block holds within the bound on an isolate that reused the facts (kill switch, issue 18 goal 2)", () => {
  it("reused before the bound, refused from the bound on: 401 invalid_token once D1 is read again", async () => {
    const cache = cacheOnTestClock();
    const db = meteredDb();
    expect((await loadRequestContext(db, bob, null, { cache })).grants.servers.get("memory")).toBe("write");
    expect(d1Reads()).toBe(1);
    await insertBlock("mock:bob");

    clock += BOUND - 1;
    const reused = await loadRequestContext(db, bob, null, { cache });
    expect(wasReused(reused), "inside the bound the facts are reused").toBe(true);
    expect(d1Reads(), "no D1 read inside the bound").toBe(1);

    clock += 1;
    const refused = await refusal(loadRequestContext(db, bob, null, { cache }));
    expect(refused.status).toBe(401);
    expect(refused.message).toContain("blocked by an administrator");
    expect(d1Reads()).toBe(2);
  });

  it("a block of one of the caller's groups holds within the bound too", async () => {
    const cache = cacheOnTestClock();
    const erin: Caller = { ...bob, principal: "mock:erin", subjects: ["mock:erin", "group:mock:staff"] };
    await loadRequestContext(meteredDb(), erin, null, { cache });
    await insertBlock("group:mock:staff");
    clock += BOUND;
    expect((await refusal(loadRequestContext(meteredDb(), erin, null, { cache }))).status).toBe(401);
  });

  it("a revocation (sign-ins before a cut-off) holds within the bound", async () => {
    const cache = cacheOnTestClock();
    await loadRequestContext(meteredDb(), bob, null, { cache });
    await env.DB.prepare(
      "INSERT INTO revocations (subject, revoked_before_ms, reason, revoked_by) VALUES (?, ?, 'test', 'mock:alice')",
    )
      .bind("mock:bob", bob.authenticatedAtMs + 1)
      .run();
    clock += BOUND;
    const refused = await refusal(loadRequestContext(meteredDb(), bob, null, { cache }));
    expect(refused.message).toContain("revoked");
  });

  it("a block made through the admin API holds at once in the isolate that made it", async () => {
    const send = viaDefaultExport;
    const client = await OAuthTestClient.register(send);
    const { code, pkce } = await signIn(new Browser(send), client, mockUpstream("alice"));
    const alice = (await tokens(await client.exchange(code, pkce.verifier))).access_token;
    // The isolate's own cache, on the real clock: bob's facts are young when the block is made.
    await loadRequestContext(database(env.DB), bob, null, { cache: decisionCache });
    expect(decisionCache.size).toBe(1);
    const blocked = await send(
      new Request(`${ORIGIN}/admin/block`, {
        method: "POST",
        headers: { authorization: `Bearer ${alice}`, "content-type": "application/json" },
        body: JSON.stringify({ subject: "mock:bob", reason: "laptop stolen" }),
      }),
    );
    expect(blocked.status).toBe(200);
    expect(decisionCache.size).toBe(0);
    expect((await refusal(loadRequestContext(database(env.DB), bob, null, { cache: decisionCache }))).status).toBe(401);
  });
});

describe("a block made in this isolate while a read is in flight", () => {
  it("the read's answer, which may predate the block, is used for its own request but not kept", async () => {
    const cache = cacheOnTestClock();
    // The block is made (and the isolate forgets) after the read began and before its answer arrives.
    const racing = Object.assign(Object.create(env.DB) as D1Database, {
      prepare: (query: string) => {
        cache.forget();
        return env.DB.prepare(query);
      },
    });
    await loadRequestContext(database(racing), bob, null, { cache });
    expect(cache.size).toBe(0);
    expect(wasReused(await loadRequestContext(meteredDb(), bob, null, { cache }))).toBe(false);
  });
});

describe("a policy re-seed takes effect within the bound (issue 18 goal 2)", () => {
  it("a grant the new policy removes is still used inside the bound and gone from the bound on", async () => {
    const cache = cacheOnTestClock();
    const db = meteredDb();
    const before = await loadRequestContext(db, bob, null, { cache });
    expect(before.grants.servers.get("memory")).toBe("write");
    const narrowed: Policy = {
      ...POLICIES.dev,
      bindings: POLICIES.dev.bindings.filter((b) => b.subject !== "mock:bob"),
    };
    await seed(narrowed);

    clock += BOUND - 1;
    expect((await loadRequestContext(db, bob, null, { cache })).grants.servers.get("memory")).toBe("write");
    clock += 1;
    const after = await loadRequestContext(db, bob, null, { cache });
    expect(after.grants.servers.size).toBe(0);
    expect(after.grants.tools.size).toBe(0);
    expect(after.policyHash).toBe((await compilePolicy(narrowed)).hash);
  });
});

describe("fail closed: the cache never stands in for D1 past the bound", () => {
  it("once the bound has passed, a D1 that fails is a 503, not the last facts read", async () => {
    const cache = cacheOnTestClock();
    await loadRequestContext(meteredDb(), bob, null, { cache });
    const broken = database(
      Object.assign(Object.create(env.DB) as D1Database, {
        prepare: () => {
          throw new Error("D1 is down");
        },
      }),
    );
    clock += BOUND - 1;
    expect(wasReused(await loadRequestContext(broken, bob, null, { cache }))).toBe(true);
    clock += 1;
    const refused = await refusal(loadRequestContext(broken, bob, null, { cache }));
    expect(refused.status).toBe(503);
    expect(cache.size, "the expired entry is gone, not kept for later").toBe(0);
  });

  it("a clock that went backwards does not make old facts young", async () => {
    const cache = cacheOnTestClock();
    await loadRequestContext(meteredDb(), bob, null, { cache });
    clock -= 1;
    expect(wasReused(await loadRequestContext(meteredDb(), bob, null, { cache }))).toBe(false);
  });
});

describe("who shares facts: only callers the grants query could not tell apart", () => {
  it("another principal, or the same principal with other groups, reads D1 for itself", async () => {
    const cache = cacheOnTestClock();
    const db = meteredDb();
    await loadRequestContext(db, bob, null, { cache });
    const carol: Caller = { ...bob, principal: "mock:carol", subjects: ["mock:carol", "email:carol@example.com"] };
    const carolCtx = await loadRequestContext(db, carol, null, { cache });
    expect(wasReused(carolCtx)).toBe(false);
    expect(carolCtx.grants.servers.get("memory")).toBe("read");
    const bobInStaff: Caller = { ...bob, subjects: [...bob.subjects, "group:mock:staff"] };
    expect(wasReused(await loadRequestContext(db, bobInStaff, null, { cache }))).toBe(false);
    expect(d1Reads()).toBe(3);
  });

  it("a session record is reused only for the session it was read for; `fresh` reads D1 again", async () => {
    const cache = cacheOnTestClock();
    const db = meteredDb();
    const one = { principal: bob.principal, sessionId: "d-one" };
    await recordSession(database(env.DB), one, 5, true, bob.subjects);
    const first = await loadRequestContext(db, bob, "d-one", { cache });
    expect(first.session?.backends.size).toBe(0);
    // The session object opens a bridge session after the Worker read the record.
    await recordBackend(database(env.DB), one, "everything", "bridge-1", "2025-11-25");
    const reused = await loadRequestContext(db, bob, "d-one", { cache });
    expect(wasReused(reused) && reused.session?.backends.size).toBe(0);
    const fresh = await loadRequestContext(db, bob, "d-one", { cache, fresh: true });
    expect(wasReused(fresh)).toBe(false);
    expect(fresh.session?.backends.get("everything")?.bridgeSessionId).toBe("bridge-1");
    expect(wasReused(await loadRequestContext(db, bob, "d-two", { cache }))).toBe(false);
  });
});
