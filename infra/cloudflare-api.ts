import { z } from "zod";

/**
 * The few Cloudflare API calls the deployment makes outside the provider: registry credentials at
 * deploy time, and cleanup of the container application when a stack is destroyed. The token is read
 * by the caller from the environment at run time; it is never a Pulumi input, so never in state.
 */

export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";

/**
 * Registry credentials live long enough for one push: they are minted after the build (deploy/registry.ts),
 * so the build's length does not count against them; wrangler uses 15 min.
 */
export const REGISTRY_CREDENTIALS_TTL_MINUTES = 30;

export const CLOUDFLARE_REGISTRY = "registry.cloudflare.com";

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** A failed call, with what the API said. The message never contains the token. */
export class CloudflareApiError extends Error {
  readonly status: number;
  readonly codes: readonly number[];
  constructor(method: string, path: string, status: number, detail: string, codes: readonly number[] = []) {
    super(`Cloudflare API ${method} ${path} failed (HTTP ${status}): ${detail}`);
    this.name = "CloudflareApiError";
    this.status = status;
    this.codes = codes;
  }
}

const envelope = z.object({
  success: z.boolean(),
  errors: z.array(z.object({ code: z.number(), message: z.string() })).default([]),
  result: z.unknown(),
});

/** The body of an error response kept in a message: enough to diagnose, short enough to read. */
const ERROR_BODY_EXCERPT_CHARS = 200;

export interface CloudflareApi {
  call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown): Promise<T>;
}

export function cloudflareApi(options: { token: string | undefined; fetch?: Fetch; base?: string }): CloudflareApi {
  const { token } = options;
  if (!token) {
    throw new Error("CLOUDFLARE_API_TOKEN is not set: the deployment needs an API token (see infra/README.md)");
  }
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const base = options.base ?? CLOUDFLARE_API_BASE;
  return {
    async call(method, path, schema, body) {
      const init: RequestInit = { method, headers: { authorization: `Bearer ${token}` } };
      if (body !== undefined) {
        init.headers = { ...init.headers, "content-type": "application/json" };
        init.body = JSON.stringify(body);
      }
      const response = await doFetch(`${base}${path}`, init);
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new CloudflareApiError(
          method,
          path,
          response.status,
          `not JSON: ${text.slice(0, ERROR_BODY_EXCERPT_CHARS)}`,
        );
      }
      const parsed = envelope.safeParse(json);
      if (!parsed.success) {
        throw new CloudflareApiError(method, path, response.status, "response is not a Cloudflare API envelope");
      }
      const { success, errors, result } = parsed.data;
      if (!response.ok || !success) {
        const detail = errors.length ? errors.map((e) => `[${e.code}] ${e.message}`).join("; ") : "no error detail";
        throw new CloudflareApiError(
          method,
          path,
          response.status,
          detail,
          errors.map((e) => e.code),
        );
      }
      const shaped = schema.safeParse(result);
      if (!shaped.success) {
        throw new CloudflareApiError(method, path, response.status, `unexpected result: ${shaped.error.message}`);
      }
      return shaped.data;
    },
  };
}

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Push credentials for Cloudflare's registry (`POST /accounts/{id}/containers/registries/{domain}/credentials`,
 * the call `wrangler containers registries credentials --push` makes).
 */
export async function registryCredentials(api: CloudflareApi, accountId: string): Promise<RegistryCredentials> {
  return api.call(
    "POST",
    `/accounts/${accountId}/containers/registries/${CLOUDFLARE_REGISTRY}/credentials`,
    z.object({ username: z.string().min(1), password: z.string().min(1) }),
    { expiration_minutes: REGISTRY_CREDENTIALS_TTL_MINUTES, permissions: ["push", "pull"] },
  );
}

const application = z.object({ id: z.string(), name: z.string() });

/** Deletes the container application named `name`, if there is one. Returns whether it existed. */
export async function deleteContainerApplication(
  api: CloudflareApi,
  accountId: string,
  name: string,
): Promise<boolean> {
  const apps = await api.call(
    "GET",
    `/accounts/${accountId}/containers/applications?name=${encodeURIComponent(name)}`,
    z.array(application).nullable(),
  );
  // The name filter is applied again here: deleting by a loose match would delete someone else's app.
  const matches = (apps ?? []).filter((app) => app.name === name);
  for (const app of matches) {
    await ignoreNotFound(api.call("DELETE", `/accounts/${accountId}/containers/applications/${app.id}`, z.unknown()));
  }
  return matches.length > 0;
}

/** The version ids serving a Worker now (its latest deployment), or null when the Worker does not exist. */
export async function currentVersionIds(
  api: CloudflareApi,
  accountId: string,
  script: string,
): Promise<string[] | null> {
  const result = await ignoreNotFound(
    api.call(
      "GET",
      `/accounts/${accountId}/workers/scripts/${script}/deployments`,
      z.object({
        deployments: z.array(z.object({ versions: z.array(z.object({ version_id: z.string() })) })),
      }),
    ),
  );
  if (result === null) return null;
  return result.deployments[0]?.versions.map((v) => v.version_id) ?? [];
}

/** The `workers/tag` annotation of a Worker version (set by `wrangler deploy --tag`), or null. */
export async function versionTag(
  api: CloudflareApi,
  accountId: string,
  script: string,
  versionId: string,
): Promise<string | null> {
  const version = await api.call(
    "GET",
    `/accounts/${accountId}/workers/scripts/${script}/versions/${versionId}`,
    z.object({ annotations: z.record(z.string(), z.unknown()).nullish() }),
  );
  const tag = version.annotations?.["workers/tag"];
  return typeof tag === "string" && tag !== "" ? tag : null;
}

/** Deletes a Worker and, with `force`, the Durable Object namespaces it owns. */
export async function deleteWorker(api: CloudflareApi, accountId: string, script: string): Promise<void> {
  await ignoreNotFound(api.call("DELETE", `/accounts/${accountId}/workers/scripts/${script}?force=true`, z.unknown()));
}

async function ignoreNotFound<T>(call: Promise<T>): Promise<T | null> {
  try {
    return await call;
  } catch (error) {
    if (error instanceof CloudflareApiError && error.status === 404) return null;
    throw error;
  }
}
