import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import {
  type CloudflareApi,
  currentVersionIds,
  deleteContainerApplication,
  deleteWorker,
  versionTag,
} from "../cloudflare-api.ts";
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
 *
 * Ownership: every version this deployment uploads carries its instance tag (`wrangler deploy --tag`,
 * the version's `workers/tag` annotation). One instance is one Pulumi resource, from its create to its
 * delete: updates keep the tag, a replacement makes a new one. The tag starts with the instance's
 * creation time, so the delete step can tell a successor (a newer instance: a replacement, skip) from
 * a rollback to an older instance's version or a version nobody tagged (a dashboard edit): then it
 * fails the destroy, because skipping would leave a Worker bound to the D1 and KV being deleted.
 */

/** `h-<creation time, base 36 ms>-<random>`: short (Worker version tags are short labels), ordered by time. */
const INSTANCE_TAG = /^h-([0-9a-z]{1,11})-([0-9a-f]{8})$/;

export function newInstanceTag(now: number = Date.now()): string {
  return `h-${now.toString(36)}-${randomBytes(4).toString("hex")}`;
}

/** The creation time of an instance tag, or null when the tag is not one of ours. */
function instanceCreatedAt(tag: string | null): number | null {
  const match = tag === null ? null : INSTANCE_TAG.exec(tag);
  return match?.[1] === undefined ? null : Number.parseInt(match[1], 36);
}

/** Marks the one stdout line the program and the delete step parse; wrangler's output is around it. */
export const RESULT_MARKER = "HATAGO_DEPLOY_RESULT ";

export interface DeployResult {
  readonly worker: string;
  readonly versionId: string;
  readonly targets: readonly string[];
  /** The instance tag every version this deployment uploads carries (absent in results of old deploys). */
  readonly instance?: string;
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
  /** This deployment's instance tag: the previous result's on an update, a new one on a create. */
  readonly instance: string;
  readonly dryRun?: boolean;
}): Promise<DeployResult> {
  const { config, instance } = options;
  return withConfigFile(config, options.repoRoot, async (configPath, dir) => {
    const outputFile = path.join(dir, "wrangler-output.ndjson");
    const args = [
      "deploy",
      "--config",
      configPath,
      "--secrets-file",
      "/dev/stdin",
      "--tag",
      instance,
      "--message",
      `hatago: Pulumi deployment ${instance} of ${config.name}`,
    ];
    if (options.dryRun) args.push("--dry-run", "--outdir", path.join(dir, "dist"));
    const code = await options.wrangler(args, {
      env: { CLOUDFLARE_ACCOUNT_ID: config.account_id, WRANGLER_OUTPUT_FILE_PATH: outputFile },
      stdin: "inherit",
    });
    if (code !== 0) throw new Error(`wrangler deploy of ${config.name} failed (exit ${code}); its output is above`);
    if (options.dryRun) return { worker: config.name, versionId: "dry-run", targets: [], instance };

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
    return { worker: config.name, versionId: last.version_id, targets: last.targets ?? [], instance };
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
  const parsed = z
    .object({
      worker: z.string(),
      versionId: z.string(),
      targets: z.array(z.string()),
      instance: z.string().regex(INSTANCE_TAG).optional(),
    })
    .safeParse(value);
  if (!parsed.success) return null;
  const { instance, ...rest } = parsed.data;
  return instance === undefined ? rest : { ...rest, instance };
}

export type DeleteOutcome = "deleted" | "already-gone" | "skipped-newer-deployment";

/**
 * Deletes what `deployWorker` created, after checking the Worker is still this deployment's: a live
 * version tagged with this instance. A version tagged by a newer instance belongs to the deployment
 * that replaced this one (Pulumi creates the replacement first, then deletes the old), so nothing is
 * deleted. Anything else (no previous result, a rollback to an older instance's version, a version
 * without our tag) fails, naming what it found: `force` deletes anyway.
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
  const forceHint = "re-run the destroy with HATAGO_FORCE_DELETE=1 to delete it anyway";

  const serving = await currentVersionIds(api, account, config.name);
  if (serving !== null && !options.force) {
    if (previous === null) {
      throw new Error(
        `cannot tell whether Worker ${config.name} is still this deployment's (no previous result recorded); ${forceHint}`,
      );
    }
    const tags = await Promise.all(serving.map((id) => versionTag(api, account, config.name, id)));
    const ours =
      previous.instance === undefined
        ? serving.includes(previous.versionId)
        : tags.some((tag) => tag === previous.instance);
    if (!ours) {
      const mine = instanceCreatedAt(previous.instance ?? null);
      const theirs = tags.map(instanceCreatedAt);
      const successor = mine !== null && theirs.length > 0 && theirs.every((t) => t !== null && t > mine);
      const found = serving.map((id, i) => `${id} (tag ${tags[i] ?? "none"})`).join(", ") || "no version";
      if (successor) {
        log(
          `Worker ${config.name} now serves ${found}, deployed by a newer instance than ${previous.instance}: ` +
            "the deployment that replaced this one owns it, so it is left in place",
        );
        return "skipped-newer-deployment";
      }
      throw new Error(
        `Worker ${config.name} serves ${found}, not a version of this deployment ` +
          `(${previous.instance ?? previous.versionId}): a rollback, a dashboard edit or a failed update. ` +
          `It is bound to the D1 database and KV namespace this destroy deletes, so it is not skipped silently; ${forceHint}`,
      );
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
