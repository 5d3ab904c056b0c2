import { z } from "zod";
import { subjectKind } from "../../policies/subjects.ts";
import { LOGIN_PROVIDERS } from "../config.ts";
import { MAX_SUBJECTS } from "../db/grants.repository.ts";

/**
 * At most this many groups are kept per sign-in. With the principal, one email and the `*` default
 * binding that is 67 subjects, under the 80 the effective-grant query binds (MAX_SUBJECTS).
 */
export const MAX_GROUPS = 64;
/** Display names are shown on pages and in logs; nothing needs more. */
const MAX_DISPLAY_NAME_CHARS = 200;

const Subject = (kinds: readonly string[]) =>
  z
    .string()
    .refine((s) => kinds.includes(subjectKind(s) ?? ""), { message: `must be a ${kinds.join(" or ")} subject` });

const PRINCIPAL_KINDS = ["github user", "access user", "oidc user", "mock user"] as const;
const GROUP_KINDS = ["github group", "access group", "oidc group", "mock group"] as const;

/**
 * What `completeAuthorization()` stores in a grant (encrypted by workers-oauth-provider) and what every
 * protected handler receives as `ctx.props`. The login result only: no upstream token is ever kept, so
 * nothing from GitHub, Access or the OIDC provider can reach an MCP server (no token passthrough).
 */
export const AuthProps = z
  .object({
    /** Schema version, so a future change can tell old grants apart. */
    v: z.literal(1),
    /** `github:<numeric id>`, `access:<sub>`, `oidc:<issuer host>:<sub>` or `mock:<name>` (policies/subjects.ts). */
    principal: Subject(PRINCIPAL_KINDS),
    /** For people: a GitHub login, a name from the ID token. Never used for decisions. */
    displayName: z.string().min(1).max(MAX_DISPLAY_NAME_CHARS),
    /** A verified email address, lowercased, or null. Only verified addresses are ever stored. */
    email: z
      .string()
      .max(254)
      .refine((e) => subjectKind(`email:${e}`) === "email", { message: "must be a lowercase email address" })
      .nullable(),
    /** Group subjects (`group:<provider>:…`), sorted, at most MAX_GROUPS. */
    groups: z.array(Subject(GROUP_KINDS)).max(MAX_GROUPS),
    provider: z.enum(LOGIN_PROVIDERS),
    /** When the person signed in upstream (epoch ms): the kill switch revokes grants older than its cut-off. */
    authenticatedAtMs: z.number().int().nonnegative(),
  })
  .strict();
export type AuthProps = z.infer<typeof AuthProps>;

/** A sign-in as a provider reports it, before it is checked and capped into AuthProps. */
export interface LoginIdentity {
  readonly provider: AuthProps["provider"];
  readonly principal: string;
  readonly displayName: string;
  /** Only if the provider says it is verified. */
  readonly verifiedEmail: string | null;
  readonly groups: readonly string[];
}

/** Turns a provider's identity into the props to store. Throws if the principal itself is malformed. */
export function authPropsFrom(identity: LoginIdentity, nowMs: number): AuthProps {
  const unique = [...new Set(identity.groups)];
  const wellFormedGroups = unique
    .filter((g) => (GROUP_KINDS as readonly string[]).includes(subjectKind(g) ?? ""))
    .sort();
  if (wellFormedGroups.length < unique.length) {
    // A group whose name the subject grammar cannot express (spaces, say) can never match a binding.
    console.warn(`login: dropped ${unique.length - wellFormedGroups.length} group(s) that are not valid subjects`);
  }
  // SECURITY: bindings only ever add access, so dropping groups can only take access away (fail safe).
  // Keeping the first MAX_GROUPS in sorted order makes the choice stable from one sign-in to the next.
  if (wellFormedGroups.length > MAX_GROUPS) {
    console.warn(
      `login: ${identity.principal} has ${wellFormedGroups.length} groups; keeping the first ${MAX_GROUPS} in sorted order`,
    );
  }
  const email = identity.verifiedEmail?.toLowerCase() ?? null;
  return AuthProps.parse({
    v: 1,
    principal: identity.principal,
    displayName: identity.displayName.slice(0, MAX_DISPLAY_NAME_CHARS) || identity.principal,
    email: email !== null && subjectKind(`email:${email}`) === "email" ? email : null,
    groups: wellFormedGroups.slice(0, MAX_GROUPS),
    provider: identity.provider,
    authenticatedAtMs: nowMs,
  });
}

/**
 * The binding subjects of a sign-in, in the order the policy resolves them: the principal, `email:<verified>`
 * if any, then the groups. The effective-grant query adds `*` (the default role) itself.
 */
export function subjectsOf(props: AuthProps): string[] {
  const subjects = [props.principal];
  if (props.email !== null) subjects.push(`email:${props.email}`);
  subjects.push(...props.groups.slice(0, MAX_GROUPS));
  const unique = [...new Set(subjects)];
  // Unreachable by construction (1 + 1 + MAX_GROUPS + "*" < MAX_SUBJECTS); checked so a change to either cap fails loudly.
  if (unique.length + 1 > MAX_SUBJECTS) throw new RangeError(`a sign-in has at most ${MAX_SUBJECTS - 1} subjects`);
  return unique;
}

/**
 * The grant's user id in workers-oauth-provider. The library forbids `:` in it (it separates the parts
 * of its tokens), and principals contain `:`, so it is the percent-encoded principal: reversible and unique.
 */
export function grantUserId(principal: string): string {
  return encodeURIComponent(principal);
}

export function principalOfGrantUserId(userId: string): string {
  return decodeURIComponent(userId);
}
