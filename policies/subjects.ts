/**
 * The grammar of binding subjects (see `Binding` in policy.types.ts). Parsing is strict: a subject that
 * does not match is a policy error, never silently ignored.
 */
const PATTERNS: readonly { kind: string; pattern: RegExp; example: string }[] = [
  { kind: "github user", pattern: /^github:[1-9][0-9]{0,19}$/, example: "github:583231" },
  { kind: "email", pattern: /^email:[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$/, example: "email:ada@example.com" },
  { kind: "access user", pattern: /^access:[A-Za-z0-9-]{1,128}$/, example: "access:2f1c…" },
  {
    kind: "oidc user",
    pattern: /^oidc:[a-z0-9.-]+(:[0-9]+)?:[^\s:][^\s]{0,254}$/,
    example: "oidc:login.example.com:abc",
  },
  { kind: "mock user", pattern: /^mock:[a-z][a-z0-9-]{0,31}$/, example: "mock:alice" },
  {
    kind: "github group",
    pattern: /^group:github:[a-z0-9](?:[a-z0-9-]{0,38})(\/[a-z0-9][a-z0-9_.-]{0,99})?$/,
    example: "group:github:acme/platform",
  },
  { kind: "access group", pattern: /^group:access:[^\s:][^\s]{0,254}$/, example: "group:access:engineering" },
  {
    kind: "oidc group",
    pattern: /^group:oidc:[a-z0-9.-]+(:[0-9]+)?:[^\s][^\s]{0,254}$/,
    example: "group:oidc:idp.example.com:eng",
  },
  { kind: "mock group", pattern: /^group:mock:[a-z][a-z0-9-]{0,31}$/, example: "group:mock:staff" },
];

export const SUBJECT_EXAMPLES = PATTERNS.map((p) => p.example);

/** The kind of a well-formed subject, or `null`. GitHub org/team names and emails must be lowercase. */
export function subjectKind(subject: string): string | null {
  for (const { kind, pattern } of PATTERNS) if (pattern.test(subject)) return kind;
  return null;
}

export function isGroupSubject(subject: string): boolean {
  return subject.startsWith("group:");
}

export function isMockSubject(subject: string): boolean {
  return subject.startsWith("mock:") || subject.startsWith("group:mock:");
}
