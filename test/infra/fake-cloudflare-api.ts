/**
 * FakeCloudflareApi: an in-memory stand-in for the few Cloudflare API endpoints the deployment calls,
 * answering like the documented API (the `{ success, errors, messages, result }` envelope, its status
 * codes and error codes). It exists because nothing here may reach the real API.
 */

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly authorization: string | null;
  readonly body: unknown;
}

interface ApiError {
  readonly code: number;
  readonly message: string;
}

const BASE = "https://api.cloudflare.com/client/v4";

export class FakeCloudflareApi {
  readonly requests: RecordedRequest[] = [];
  /** Batches received per database id, in order. */
  readonly d1Batches = new Map<string, string[][]>();
  /** Container applications by id. */
  readonly containerApps = new Map<string, { id: string; name: string }>();
  /** Workers by script name: the version ids of their latest deployment, and version tags (`workers/tag`). */
  readonly workers = new Map<string, { versions: string[]; tags?: Record<string, string> }>();
  /** SQL that D1 rejects (a substring); D1 answers 400 with code 7500. */
  rejectSql: string | undefined;
  /** The next request fails with this status and error, whatever it is. */
  failNext: { status: number; error: ApiError } | undefined;

  readonly accountId: string;
  readonly token: string;
  readonly databases: Set<string>;

  constructor(options: { accountId: string; token: string; databases?: readonly string[] }) {
    this.accountId = options.accountId;
    this.token = options.token;
    this.databases = new Set(options.databases ?? []);
  }

  /** A `fetch` that serves this fake. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const method = (init?.method ?? "GET").toUpperCase();
    const headers = new Headers(init?.headers);
    const text = typeof init?.body === "string" ? init.body : undefined;
    const body = text === undefined ? undefined : JSON.parse(text);
    if (!url.href.startsWith(`${BASE}/`)) throw new TypeError(`FakeCloudflareApi: request to another host: ${url}`);
    const path = url.pathname.slice(new URL(BASE).pathname.length);
    this.requests.push({ method, path, query: url.searchParams, authorization: headers.get("authorization"), body });

    if (this.failNext) {
      const { status, error } = this.failNext;
      this.failNext = undefined;
      return failure(status, [error]);
    }
    if (headers.get("authorization") !== `Bearer ${this.token}`) {
      return failure(403, [{ code: 10000, message: "Authentication error" }]);
    }
    const parts = path.split("/").filter(Boolean);
    if (parts[0] !== "accounts" || parts[1] !== this.accountId) {
      return failure(403, [{ code: 9109, message: "Unauthorized to access requested resource" }]);
    }
    return this.route(method, parts.slice(2), url.searchParams, body);
  };

  private route(method: string, parts: string[], query: URLSearchParams, body: unknown): Response {
    const [a, b, c, d, e] = parts;
    // POST /d1/database/{id}/query  { sql } | { batch: [{ sql, params? }] }
    if (method === "POST" && a === "d1" && b === "database" && c && d === "query" && !e) {
      if (!this.databases.has(c))
        return failure(404, [{ code: 7404, message: `The database ${c} could not be found` }]);
      const batch = (body as { batch?: { sql?: unknown }[] } | undefined)?.batch;
      if (!Array.isArray(batch) || batch.some((q) => typeof q.sql !== "string" || q.sql === "")) {
        return failure(400, [{ code: 7400, message: "The request is malformed: batch of { sql } expected" }]);
      }
      const statements = batch.map((q) => String(q.sql));
      if (this.rejectSql && statements.some((s) => s.includes(this.rejectSql ?? ""))) {
        return failure(400, [{ code: 7500, message: 'near "BROKEN": syntax error at offset 0: SQLITE_ERROR' }]);
      }
      this.d1Batches.set(c, [...(this.d1Batches.get(c) ?? []), statements]);
      return ok(statements.map(() => ({ success: true, results: [], meta: { changes: 1, duration: 0.1 } })));
    }
    // POST /containers/registries/{domain}/credentials  { expiration_minutes, permissions }
    if (method === "POST" && a === "containers" && b === "registries" && c && d === "credentials" && !e) {
      const permissions = (body as { permissions?: unknown } | undefined)?.permissions;
      if (!Array.isArray(permissions) || permissions.length === 0) {
        return failure(400, [{ code: 1000, message: "permissions is required" }]);
      }
      return ok({ account_id: this.accountId, registry_host: c, username: "v1", password: "fake-registry-password" });
    }
    // GET /containers/applications?name=   DELETE /containers/applications/{id}
    if (a === "containers" && b === "applications") {
      if (method === "GET" && !c) {
        const name = query.get("name");
        return ok([...this.containerApps.values()].filter((app) => name === null || app.name === name));
      }
      if (method === "DELETE" && c && !d) {
        if (!this.containerApps.delete(c)) return failure(404, [{ code: 1404, message: "application not found" }]);
        return ok({});
      }
    }
    // GET /workers/scripts/{name}/deployments   DELETE /workers/scripts/{name}?force=true
    if (a === "workers" && b === "scripts" && c) {
      const worker = this.workers.get(c);
      const notFound = () => failure(404, [{ code: 10007, message: "This Worker does not exist on your account." }]);
      if (method === "GET" && d === "deployments" && !e) {
        if (!worker) return notFound();
        return ok({
          deployments: [
            {
              id: "deployment-1",
              strategy: "percentage",
              versions: worker.versions.map((v) => ({ version_id: v, percentage: 100 })),
            },
          ],
        });
      }
      // GET /workers/scripts/{name}/versions/{id}: the version, with its annotations
      if (method === "GET" && d === "versions" && e && !parts[5]) {
        if (!worker) return notFound();
        const tag = worker.tags?.[e];
        return ok({
          id: e,
          number: 1,
          metadata: { source: "wrangler" },
          annotations: { "workers/triggered_by": "upload", ...(tag === undefined ? {} : { "workers/tag": tag }) },
        });
      }
      if (method === "DELETE" && !d) {
        if (!worker) return notFound();
        this.workers.delete(c);
        return ok(null);
      }
    }
    return failure(404, [{ code: 7003, message: `Could not route to /${parts.join("/")}` }]);
  }
}

function ok(result: unknown): Response {
  return Response.json({ success: true, errors: [], messages: [], result });
}

function failure(status: number, errors: ApiError[]): Response {
  return Response.json({ success: false, errors, messages: [], result: null }, { status });
}
