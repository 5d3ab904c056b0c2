// Usage (run by the Pulumi program's commands, from the repository root):
//   node infra/deploy/cli.ts d1-migrate      env HATAGO_WRANGLER_CONFIG
//   node infra/deploy/cli.ts worker-deploy   env HATAGO_WRANGLER_CONFIG, stdin: secrets JSON   [--dry-run]
//   node infra/deploy/cli.ts worker-delete   env HATAGO_WRANGLER_CONFIG, PULUMI_COMMAND_STDOUT  [HATAGO_FORCE_DELETE=1]
//   node infra/deploy/cli.ts registry-login  env HATAGO_ACCOUNT_ID
// CLOUDFLARE_API_TOKEN comes from the environment of `pulumi up`/`destroy`; it is never a Pulumi input.
import { fileURLToPath } from "node:url";
import { cloudflareApi } from "../cloudflare-api.ts";
import { applyD1Migrations } from "./d1.ts";
import { realDocker, registryLogin } from "./registry.ts";
import { deleteWorkerDeployment, deployWorker, formatResult, newInstanceTag, parseResult } from "./worker.ts";
import { parseGeneratedConfig, realWrangler } from "./wrangler.ts";

export const CONFIG_VARIABLE = "HATAGO_WRANGLER_CONFIG";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...flags] = argv;
  if (command === "registry-login") {
    const accountId = process.env.HATAGO_ACCOUNT_ID;
    if (!accountId) throw new Error("HATAGO_ACCOUNT_ID is not set: this command is run by the Pulumi program");
    const api = cloudflareApi({ token: process.env.CLOUDFLARE_API_TOKEN });
    await registryLogin({ accountId, api, docker: realDocker() });
    return;
  }
  const config = parseGeneratedConfig(process.env[CONFIG_VARIABLE], CONFIG_VARIABLE);
  const wrangler = realWrangler(repoRoot);
  switch (command) {
    case "d1-migrate":
      await applyD1Migrations({ config, repoRoot, wrangler });
      return;
    case "worker-deploy": {
      // stdin (the secrets JSON) is left unread: wrangler inherits it.
      // An update keeps the instance tag of the previous deploy; a create (also a replacement) makes one.
      const instance = parseResult(process.env.PULUMI_COMMAND_STDOUT)?.instance ?? newInstanceTag();
      const result = await deployWorker({
        config,
        repoRoot,
        wrangler,
        instance,
        dryRun: flags.includes("--dry-run"),
      });
      process.stdout.write(`${formatResult(result)}\n`);
      return;
    }
    case "worker-delete": {
      const api = cloudflareApi({ token: process.env.CLOUDFLARE_API_TOKEN });
      await deleteWorkerDeployment({
        config,
        api,
        previousStdout: process.env.PULUMI_COMMAND_STDOUT,
        force: process.env.HATAGO_FORCE_DELETE === "1",
        log: (line) => process.stdout.write(`${line}\n`),
      });
      return;
    }
    default:
      throw new Error(
        `unknown command "${command ?? ""}" (d1-migrate | worker-deploy | worker-delete | registry-login)`,
      );
  }
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`hatago deploy: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
