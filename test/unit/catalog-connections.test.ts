import { describe, expect, it } from "vitest";
import { SECRET_VARIABLE_PREFIX } from "../../container/src/secrets.ts";
import { catalog, SERVER_IDS } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";

const entries = SERVER_IDS.map((id) => [id, catalog[id] as CatalogEntry] as const);
const withConnection = entries.filter(([, e]) => e.connection !== undefined);

describe("connections are declared only where one person's token stays with that person (issue 17)", () => {
  it("the demo declares one (so the rules below test something)", () => {
    expect(withConnection.map(([id]) => id)).toContain("whoami-upstream");
  });

  it.each(withConnection)(
    "%s: a server that acts as each person is per-user (a shared process would hold everyone's tokens)",
    (_id, entry) => {
      expect(entry.isolation ?? "per-user").toBe("per-user");
    },
  );

  it.each(withConnection)(
    "%s: the token's name is a variable name, not a HATAGO_ one, and not also a secret or a fixed variable",
    (_id, entry) => {
      const spec = entry.connection;
      if (!spec) return;
      expect(spec.name).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
      expect(spec.name.startsWith(SECRET_VARIABLE_PREFIX)).toBe(false);
      expect(spec.name.startsWith("HATAGO_")).toBe(false);
      expect(Object.keys(entry.secrets ?? {})).not.toContain(spec.name);
      expect(Object.keys(entry.env?.set ?? {})).not.toContain(spec.name);
      expect(entry.env?.inherit ?? []).not.toContain(spec.name);
      expect(spec.provider).toMatch(/^[a-z][a-z0-9-]{0,31}$/);
      for (const scope of spec.scopes) expect(scope).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/);
    },
  );
});
