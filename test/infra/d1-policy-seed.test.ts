import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type D1PolicySeedInputs,
  type D1PolicySeedOutputs,
  makeD1PolicySeedProvider,
} from "../../infra/d1-policy-seed.ts";
import { type CompiledPolicy, compilePolicy, POLICIES } from "../../policies/index.ts";
import { FakeCloudflareApi } from "./fake-cloudflare-api.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const DB = "00000000-0000-4000-8000-00000000d1d1";
const TOKEN = "fake-token-for-tests";

function inputsFor(policy: CompiledPolicy, databaseId = DB): D1PolicySeedInputs {
  return {
    accountId: ACCOUNT,
    databaseId,
    environment: policy.environment,
    policyHash: policy.hash,
    roles: policy.roles.map((r) => `${r.name}: ${r.description}`),
    bindings: policy.bindings.map((b) => `${b.subject} → ${b.role}`),
    statements: [...policy.statements],
  };
}

const outputsFor = (inputs: D1PolicySeedInputs): D1PolicySeedOutputs => ({
  ...inputs,
  appliedAt: "2026-11-26T00:00:00Z",
});

let dev: CompiledPolicy;
let staging: CompiledPolicy;
let api: FakeCloudflareApi;

beforeEach(async () => {
  dev = await compilePolicy(POLICIES.dev);
  staging = await compilePolicy(POLICIES.staging);
  api = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN, databases: [DB] });
  vi.stubEnv("CLOUDFLARE_API_TOKEN", TOKEN);
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.unstubAllGlobals();
});

describe("D1PolicySeed diff: re-seeded exactly when the compiled policy's hash changes", () => {
  it("reports no change for the same compiled policy (a redeploy does not re-seed)", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    const again = await compilePolicy(POLICIES.dev);
    const diff = await provider.diff?.("id", outputsFor(inputsFor(dev)), inputsFor(again));
    expect(diff).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
  });

  it("reports an in-place update when the policy changes", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    const diff = await provider.diff?.("id", outputsFor(inputsFor(dev)), inputsFor(staging));
    expect(diff?.changes).toBe(true);
    expect(diff?.replaces).toEqual([]);
  });

  it("follows the hash, not the summary fields (only the hash says what D1 holds)", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    const cosmetic = { ...inputsFor(dev), roles: ["renamed: for display only"] };
    expect((await provider.diff?.("id", outputsFor(inputsFor(dev)), cosmetic))?.changes).toBe(false);
  });

  it("replaces the seed when the database is replaced (a new database must be seeded)", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    const diff = await provider.diff?.("id", outputsFor(inputsFor(dev)), inputsFor(dev, "another-database"));
    expect(diff).toMatchObject({ changes: true, replaces: ["databaseId"] });
  });
});

describe("D1PolicySeed against the D1 query API (FakeCloudflareApi)", () => {
  it("create sends every compiled statement, in order, as one { batch } to /d1/database/{id}/query", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    const result = await provider.create(inputsFor(dev));
    expect(result.id).toBe(`${DB}/policy`);
    expect(result.outs?.policyHash).toBe(dev.hash);
    expect(api.d1Batches.get(DB)).toEqual([[...dev.statements]]);
    const request = api.requests[0];
    expect(request).toMatchObject({ method: "POST", path: `/accounts/${ACCOUNT}/d1/database/${DB}/query` });
    expect(request?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it("update replaces the whole policy: the batch starts by deleting every policy table's rows", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    await provider.create(inputsFor(dev));
    const updated = await provider.update?.(`${DB}/policy`, outputsFor(inputsFor(dev)), inputsFor(staging));
    expect(updated?.outs?.policyHash).toBe(staging.hash);
    const second = api.d1Batches.get(DB)?.[1] ?? [];
    expect(second).toEqual([...staging.statements]);
    expect(second.slice(0, 5).every((sql) => sql.startsWith("DELETE FROM "))).toBe(true);
    expect(second.at(-1)).toContain(staging.hash);
  });

  it("delete leaves the rows alone (they belong to the database's lifecycle)", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    await provider.delete?.(`${DB}/policy`, outputsFor(inputsFor(dev)));
    expect(api.requests).toEqual([]);
  });

  it("reads the token at run time, from the environment, and refuses to run without one", async () => {
    vi.stubEnv("CLOUDFLARE_API_TOKEN", "");
    const provider = makeD1PolicySeedProvider(api.fetch);
    await expect(provider.create(inputsFor(dev))).rejects.toThrow(/CLOUDFLARE_API_TOKEN is not set/);
    expect(api.requests).toEqual([]);
  });
});

describe("D1PolicySeed: API errors surface with what the API said", () => {
  it("an authentication failure names the HTTP status and the API's error code", async () => {
    vi.stubEnv("CLOUDFLARE_API_TOKEN", "a-revoked-token");
    const provider = makeD1PolicySeedProvider(api.fetch);
    const error = provider.create(inputsFor(dev));
    await expect(error).rejects.toThrow(/HTTP 403.*\[10000\] Authentication error/);
    await expect(error).rejects.not.toThrow(/a-revoked-token/);
  });

  it("a database that does not exist is reported as such", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    await expect(provider.create(inputsFor(dev, "missing-db"))).rejects.toThrow(
      /HTTP 404.*\[7404\].*could not be found/,
    );
  });

  it("SQL that D1 rejects fails the deployment with the SQLite error", async () => {
    api.rejectSql = "INSERT INTO roles";
    const provider = makeD1PolicySeedProvider(api.fetch);
    await expect(provider.create(inputsFor(dev))).rejects.toThrow(/HTTP 400.*\[7500\].*SQLITE_ERROR/);
  });

  it("a batch whose envelope succeeds but one statement fails is still a failure", async () => {
    const oneFailed: typeof fetch = async () =>
      Response.json({ success: true, errors: [], messages: [], result: [{ success: true }, { success: false }] });
    const provider = makeD1PolicySeedProvider(oneFailed);
    await expect(provider.create(inputsFor(dev))).rejects.toThrow(/statement 2 of \d+ failed/);
  });

  it("a non-JSON answer (an HTML error page) is reported with its status", async () => {
    const gatewayError: typeof fetch = async () => new Response("<html>502 Bad Gateway</html>", { status: 502 });
    const provider = makeD1PolicySeedProvider(gatewayError);
    await expect(provider.create(inputsFor(dev))).rejects.toThrow(/HTTP 502.*Bad Gateway/);
  });
});

describe("D1PolicySeed check", () => {
  it("refuses a statement longer than D1's 100,000-byte statement limit before deploying", async () => {
    const provider = makeD1PolicySeedProvider(api.fetch);
    const tooLong = { ...inputsFor(dev), statements: [`INSERT INTO roles VALUES ('${"x".repeat(100_001)}')`] };
    const result = await provider.check?.(inputsFor(dev), tooLong);
    expect(result?.failures?.[0]?.reason).toMatch(/100000-byte limit/);
    expect((await provider.check?.(inputsFor(dev), inputsFor(dev)))?.failures).toEqual([]);
  });
});

describe("D1PolicySeed as the engine runs it: serialized into state, run without the program", () => {
  it("captures no token and seeds through the global fetch", async () => {
    const pulumi = await import("@pulumi/pulumi");
    // What pulumi.dynamic.Resource stores as `__provider`.
    const forState = makeD1PolicySeedProvider();
    const text = await pulumi.runtime.serializeFunction(() => forState);
    expect(text.text).not.toContain(TOKEN);
    vi.stubGlobal("fetch", api.fetch);
    const module = { exports: {} as { handler?: () => ReturnType<typeof makeD1PolicySeedProvider> } };
    new Function("exports", "module", text.text)(module.exports, module);
    const provider = module.exports.handler?.();
    await provider?.create(inputsFor(dev));
    expect(api.d1Batches.get(DB)).toHaveLength(1);
  });
});
