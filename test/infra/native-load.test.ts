import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../infra/source-hash.ts";
import { TYPES } from "./harness.ts";

// Vitest runs the program through its own transform; Pulumi does not. This runs it under plain Node,
// as Pulumi's runtime loads `main` with typescript: false, so a module Node cannot load (non-erasable
// TypeScript, a wrong import) or a dynamic provider that cannot be serialized from native ESM fails here.
describe("the program loads as Pulumi loads it (Node's own type stripping, native ESM)", () => {
  const result = spawnSync(process.execPath, [path.join(REPO_ROOT, "test/infra/native-runner.ts")], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 30_000,
  });

  it("runs to completion and registers every kind of resource", () => {
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const seen = JSON.parse(result.stdout);
    expect(seen.mcpUrl).toBe("https://hatago-dev.acme.workers.dev/mcp");
    for (const type of [TYPES.d1, TYPES.kv, TYPES.image, TYPES.command, TYPES.password, TYPES.seed]) {
      expect(seen.types).toContain(type);
    }
  });

  it("serializes the D1PolicySeed provider from native ESM, self-contained (no module or token captured)", () => {
    const { serializedProvider } = JSON.parse(result.stdout);
    expect(serializedProvider).toMatch(/^exports\.handler = /);
    expect(serializedProvider).toContain("fetchImpl: undefined");
    expect(serializedProvider).not.toMatch(/require\(|CLOUDFLARE_API_TOKEN: "/);
  });
});
