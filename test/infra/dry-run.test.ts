import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { parseStackConfig } from "../../infra/config.ts";
import { REPO_ROOT } from "../../infra/source-hash.ts";
import { wranglerConfig } from "../../infra/wrangler-config.ts";

// The deploy step's own code (infra/deploy/cli.ts worker-deploy) with `--dry-run`: wrangler reads the
// generated config, bundles the Worker, reads the secrets from /dev/stdin and lists what it would
// upload, without reaching Cloudflare. A shell pipe feeds stdin, as Pulumi's command provider does
// (a pipe; Node's own child stdin would be a socket, which /dev/stdin cannot open).
describe("wrangler deploy --dry-run of the generated configuration (offline)", () => {
  const values: Record<string, string> = { accountId: "0123456789abcdef0123456789abcdef", workersDevSubdomain: "acme" };
  const config = parseStackConfig("dev", { get: (key) => values[key], getSecret: () => undefined });
  const image = `registry.cloudflare.com/${config.accountId}/hatago-bridge@sha256:${"ab".repeat(32)}`;
  const generated = wranglerConfig({
    names: config.names,
    accountId: config.accountId,
    hosting: config.hosting,
    d1DatabaseId: "00000000-0000-4000-8000-000000000001",
    kvNamespaceId: "0123456789abcdef0123456789abcdef",
    stateBucketName: "hatago-dev-bridge-state",
    image,
    container: config.container,
    vars: { HATAGO_ENVIRONMENT: "dev", HATAGO_PUBLIC_URL: config.baseUrl, HATAGO_LOGIN_PROVIDER: "mock" },
  });

  it("bundles the Worker and lists its bindings, the container by digest-only reference, and the secret as hidden", () => {
    const result = spawnSync(
      "/bin/sh",
      ["-c", 'printf %s "$SECRETS" | "$NODE" infra/deploy/cli.ts worker-deploy --dry-run'],
      {
        cwd: REPO_ROOT,
        encoding: "utf8",
        timeout: 60_000,
        env: {
          ...process.env,
          NODE: process.execPath,
          SECRETS: JSON.stringify({ HATAGO_BRIDGE_SECRET: "dry-run-secret-".padEnd(48, "x") }),
          HATAGO_WRANGLER_CONFIG: JSON.stringify(generated),
          CLOUDFLARE_API_TOKEN: "",
        },
      },
    );
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.status).toBe(0);
    for (const line of [
      "env.BRIDGE (BridgeContainer)",
      "env.MCP_SESSIONS (McpSession)",
      "env.AUDIT_LEDGER (AuditLedger)",
      "env.DB (hatago-dev)",
    ]) {
      expect(result.stdout).toContain(line);
    }
    expect(result.stdout).toContain(`hatago-dev-bridge (${image})`);
    expect(result.stdout).toMatch(/env\.HATAGO_BRIDGE_SECRET \("\(hidden\)"\)/);
    expect(result.stdout).not.toContain("dry-run-secret-");
  }, 60_000);
});
