import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { type CloudflareApi, currentVersionIds, deleteContainerApplication, deleteWorker } from "../cloudflare-api.ts";
import { type GeneratedConfig, type WranglerRunner, withConfigFile } from "./wrangler.ts";

/**
 * What the Pulumi command runs to deploy and delete the Worker with its container.
 *
 * Deploy: `wrangler deploy` with the generated config. Wrangler uploads the Worker with its bindings,
 * Durable Object migrations and `containers` metadata, then creates or updates the container
 * application (infra.md §2: the provider cannot do this).
 *
 * SECURITY: secrets go in the same upload, as secret bindings (`--secrets-file /dev/stdin`): new code
 * never runs without its secrets, and no secret is written to disk or passes through this process.
 * The Pulumi command writes the secrets JSON to this process's stdin, a pipe (Go's os/exec makes one
 * for a string), and wrangler inherits it unread. It must be inherited, not re-piped: Node gives a
 * child a socket for a piped stdin, and /dev/stdin cannot be opened on a socket (ENXIO).
 *
 * Delete: the container application (wrangler's own delete leaves it behind), then the Worker.
 */

/** Marks the one stdout line the program and the delete step parse; wrangler's output is around it. */
export const RESULT_MARKER = "HATAGO_DEPLOY_RESULT ";

export interface DeployResult {
  readonly worker: string;
  readonly versionId: string;
  readonly targets: readonly string[];
}

const deployEntry = z.object({
  type: z.literal("deploy"),
  version_id: z.string().min(1),
  targets: z.array(z.string()).optional(),
});

export async function deployWorker(options: {
  readonly config: GeneratedConfig;
  readonly repoRoot: string;
  readonly wrangler: WranglerRunner;
  readonly dryRun?: boolean;
}): Promise<DeployResult> {
  const { config } = options;
  return withConfigFile(config, options.repoRoot, async (configPath, dir) => {
    const outputFile = path.join(dir, "wrangler-output.ndjson");
    const args = ["deploy", "--config", configPath, "--secrets-file", "/dev/stdin"];
    if (options.dryRun) args.push("--dry-run", "--outdir", path.join(dir, "dist"));
    const code = await options.wrangler(args, {
      env: { CLOUDFLARE_ACCOUNT_ID: config.account_id, WRANGLER_OUTPUT_FILE_PATH: outputFile },
      stdin: "inherit",
    });
    if (code !== 0) throw new Error(`wrangler deploy of ${config.name} failed (exit ${code}); its output is above`);
    if (options.dryRun) return { worker: config.name, versionId: "dry-run", targets: [] };

    const lines = (await readFile(outputFile, "utf8").catch(() => "")).split("\n").filter(Boolean);
    const entries = lines.flatMap((line) => {
      try {
        const parsed = deployEntry.safeParse(JSON.parse(line));
        return parsed.success ? [parsed.data] : [];
      } catch {
        return [];
      }
    });
    const last = entries.at(-1);
    if (!last) throw new Error(`wrangler deploy of ${config.name} reported no deployment in ${outputFile}`);
    return { worker: config.name, versionId: last.version_id, targets: last.targets ?? [] };
  });
}

export function formatResult(result: DeployResult): string {
  return `${RESULT_MARKER}${JSON.stringify(result)}`;
}

/** The result line of a previous deploy, from the command's previous stdout; null if there is none. */
export function parseResult(stdout: string | undefined): DeployResult | null {
  const line = (stdout ?? "")
    .split("\n")
    .reverse()
    .find((l) => l.startsWith(RESULT_MARKER));
  if (!line) return null;
  let value: unknown;
  try {
    value = JSON.parse(line.slice(RESULT_MARKER.length));
  } catch {
    return null;
  }
  const parsed = z.object({ worker: z.string(), versionId: z.string(), targets: z.array(z.string()) }).safeParse(value);
  return parsed.success ? parsed.data : null;
}

export type DeleteOutcome = "deleted" | "already-gone" | "skipped-newer-deployment";

/**
 * Deletes what `deployWorker` created. Guard: if the Worker now serves a version this deployment did
 * not create, the Worker belongs to a newer deployment (Pulumi replacing this resource creates the
 * new one first, then deletes the old), so nothing is deleted. `force` skips the guard.
 */
export async function deleteWorkerDeployment(options: {
  readonly config: GeneratedConfig;
  readonly previousStdout: string | undefined;
  readonly api: CloudflareApi;
  readonly force?: boolean;
  readonly log?: (line: string) => void;
}): Promise<DeleteOutcome> {
  const { config, api } = options;
  const log = options.log ?? (() => {});
  const account = config.account_id;
  const appName = config.containers?.[0]?.name;
  const previous = parseResult(options.previousStdout);

  const serving = await currentVersionIds(api, account, config.name);
  if (serving !== null && !options.force) {
    if (previous === null) {
      throw new Error(
        `cannot tell whether Worker ${config.name} is still this deployment's (no previous result recorded); ` +
          "re-run with HATAGO_FORCE_DELETE=1 to delete it anyway",
      );
    }
    if (!serving.includes(previous.versionId)) {
      log(
        `Worker ${config.name} now serves ${serving.join(", ") || "no version"}, not ${previous.versionId}: ` +
          "a newer deployment owns it, so it is left in place",
      );
      return "skipped-newer-deployment";
    }
  }
  const appExisted = appName ? await deleteContainerApplication(api, account, appName) : false;
  if (serving !== null) await deleteWorker(api, account, config.name);
  const deleted = [
    ...(appExisted ? [`container application ${appName}`] : []),
    ...(serving !== null ? [`Worker ${config.name}`] : []),
  ];
  log(deleted.length > 0 ? `deleted ${deleted.join(" and ")}` : `nothing left to delete for ${config.name}`);
  return serving === null && !appExisted ? "already-gone" : "deleted";
}
