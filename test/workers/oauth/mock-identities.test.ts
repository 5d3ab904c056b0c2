import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { authorize, compilePolicy, effectiveGrants, POLICIES } from "../../../policies/index.ts";
import { database } from "../../../worker/db/database.ts";
import { loadPrincipalGrants } from "../../../worker/db/grants.repository.ts";
import { DEMO_NAMES } from "../../../worker/login/index.ts";
import { Browser } from "./harness/browser.ts";
import { mockUpstream, signIn, tokens } from "./harness/flow.ts";
import { OAuthTestClient } from "./harness/oauth-client.ts";
import { viaDefaultExport } from "./harness/workers.ts";

const send = viaDefaultExport;

/** What policies/environments/dev.ts gives each demo person, as one decision that only their role passes. */
const EXPECTED: Record<
  (typeof DEMO_NAMES)[number],
  { subjects: string[]; allowed: Parameters<typeof authorize>[1] | null }
> = {
  alice: { subjects: ["mock:alice"], allowed: { kind: "admin" } },
  bob: { subjects: ["mock:bob"], allowed: { kind: "tool", server: "memory", tool: "create_entities" } },
  carol: {
    subjects: ["mock:carol", "email:carol@example.com"],
    allowed: { kind: "tool", server: "memory", tool: "read_graph" },
  },
  dave: { subjects: ["mock:dave"], allowed: null },
  erin: { subjects: ["mock:erin", "group:mock:staff"], allowed: { kind: "tool", server: "everything", tool: "echo" } },
  frank: { subjects: ["mock:frank", "group:mock:oncall"], allowed: { kind: "execute", server: "memory" } },
};

describe("the mock login's demo people match the dev policy (policies/environments/dev.ts)", () => {
  it("offers exactly alice, bob, carol, dave, erin and frank", () => {
    expect([...DEMO_NAMES]).toEqual(Object.keys(EXPECTED));
  });

  for (const person of DEMO_NAMES) {
    it(`${person} signs in with the subjects the policy binds, and gets their role's access`, async () => {
      const compiled = await compilePolicy(POLICIES.dev);
      await env.DB.batch(compiled.statements.map((s) => env.DB.prepare(s)));
      const client = await OAuthTestClient.register(send);
      const { code, pkce } = await signIn(new Browser(send), client, mockUpstream(person));
      const issued = await tokens(await client.exchange(code, pkce.verifier));
      const me = (await (await client.whoami(issued.access_token)).json()) as { subjects: string[] };
      const expected = EXPECTED[person];
      expect(me.subjects).toEqual(expected.subjects);

      const loaded = await loadPrincipalGrants(database(env.DB), me.subjects);
      if (expected.allowed === null) {
        expect(loaded.rows).toEqual([]);
      } else {
        expect(authorize(effectiveGrants(loaded.rows), expected.allowed).allow).toBe(true);
        // dave, with no role, is denied the same thing: the grant comes from the binding, not the login.
        const dave = await loadPrincipalGrants(database(env.DB), ["mock:dave"]);
        expect(authorize(effectiveGrants(dave.rows), expected.allowed).allow).toBe(false);
      }
    });
  }
});
