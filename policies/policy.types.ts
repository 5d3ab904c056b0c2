import type { catalogSnapshot } from "./catalog.snapshot.ts";
import type { ServerId } from "./catalog.ts";
import type { Level } from "./levels.ts";

/** The tools a server had when the snapshot was taken: a typo in a role is a compile error. */
export type ToolName<S extends ServerId> = keyof (typeof catalogSnapshot)[S]["tools"] & string;

/**
 * A grant on one server: the tools of `server` whose level is at most `level`.
 * - `allow`: only these tools (each must be within `level`). Without `allow` the grant covers the whole
 *   server at `level`, including tools the server adds later that are not in the snapshot.
 * - `deny`: removes these tools from this grant. Grants are additive across roles (like Kubernetes
 *   RBAC): a deny narrows its own grant and never takes away what another role gives.
 */
export type ServerGrant = {
  [S in ServerId]: {
    readonly server: S;
    readonly level: Level;
    readonly allow?: readonly ToolName<S>[];
    readonly deny?: readonly ToolName<S>[];
  };
}[ServerId];

/** A grant on every server in the catalog at `level`. `admin` on `*` also opens the admin endpoints. */
export interface WildcardGrant {
  readonly server: "*";
  readonly level: Level;
}

export type Grant = ServerGrant | WildcardGrant;

export interface Role {
  readonly description: string;
  readonly grants: readonly Grant[];
  /** Tool calls per minute for a principal holding this role; the highest limit among its roles applies. */
  readonly rateLimitPerMinute?: number;
}

/**
 * Who gets which roles. A subject is a principal or a group:
 * - `github:<numeric id>`: a GitHub user. Never a login: logins can be renamed and re-registered by
 *   someone else, which would hand them this access.
 * - `email:<address>`: a verified email address (any provider).
 * - `access:<sub>`: a Cloudflare Access user; `oidc:<issuer host>:<sub>`: a user of another OIDC issuer.
 * - `mock:<name>`: a mock-login identity (local development and tests only; refused in production).
 * - `group:github:<org>` or `group:github:<org>/<team>`, `group:access:<name>`,
 *   `group:oidc:<issuer host>:<name>`, `group:mock:<name>`: a group membership reported at login.
 */
export interface Binding<R extends string = string> {
  readonly subject: string;
  readonly roles: readonly R[];
  /** For reviewers: who this is. Not used for decisions. */
  readonly note?: string;
}

export const ENVIRONMENTS = ["dev", "staging", "prod"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export interface Policy<R extends string = string> {
  readonly environment: Environment;
  readonly roles: Readonly<Record<R, Role>>;
  readonly bindings: readonly Binding<NoInfer<R>>[];
  /** The role every signed-in principal gets; `null` means none. Must be `null` in `prod`. */
  readonly defaultRole: NoInfer<R> | null;
}

/** Identity function that gives a policy its types: role names used in bindings must be defined. */
export function definePolicy<const R extends string>(policy: Policy<R>): Policy<R> {
  return policy;
}
