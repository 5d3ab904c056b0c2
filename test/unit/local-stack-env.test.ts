import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LOCAL_RUNTIME_DEFAULTS, localStackEnv } from "../../scripts/lib/local-stack.ts";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";

// The local stack's memory levels off only with these settings (bench/RESULTS.md, "Memory soak").
describe("the environment the local stack runs wrangler with", () => {
  it("turns wrangler dev's local trace store off and makes workerd's V8 collections full ones", () => {
    const env = localStackEnv({ PATH: "/usr/bin" });
    expect(env.X_LOCAL_OBSERVABILITY).toBe("false");
    expect(env.MINIFLARE_WORKERD_V8_FLAGS).toBe("--gc-global");
    expect(env.PATH).toBe("/usr/bin");
  });

  it("lets the caller choose otherwise (local traces on, no V8 flags), but never turns telemetry on", () => {
    const env = localStackEnv({ X_LOCAL_OBSERVABILITY: "true", MINIFLARE_WORKERD_V8_FLAGS: "", DO_NOT_TRACK: "0" });
    expect(env.X_LOCAL_OBSERVABILITY).toBe("true");
    expect(env.MINIFLARE_WORKERD_V8_FLAGS).toBe("");
    expect(env.DO_NOT_TRACK).toBe("1");
    expect(env.WRANGLER_SEND_METRICS).toBe("false");
  });

  it("names settings the installed wrangler and its Miniflare still read (an upgrade that drops one fails here)", () => {
    const wrangler = path.join(REPO_ROOT, "node_modules/wrangler");
    const cli = readFileSync(path.join(wrangler, "wrangler-dist/cli.js"), "utf8");
    // wrangler dev: `unsafeObservability: getLocalObservabilityEnabledFromEnv()`, read from this variable.
    expect(cli).toContain('variableName: "X_LOCAL_OBSERVABILITY"');
    const miniflare = readFileSync(createRequire(path.join(wrangler, "package.json")).resolve("miniflare"), "utf8");
    // Miniflare passes it to workerd's config as `v8Flags`.
    expect(miniflare).toContain("process.env.MINIFLARE_WORKERD_V8_FLAGS");
    expect(Object.keys(LOCAL_RUNTIME_DEFAULTS).sort()).toEqual(["MINIFLARE_WORKERD_V8_FLAGS", "X_LOCAL_OBSERVABILITY"]);
  });
});
