import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigReader, type ConfigSource } from "../../infra/config-reader.ts";
import { readServerSecrets } from "../../infra/server-secrets.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";

const VALUE = "ghp_value_that_must_never_be_printed";

const entries: Record<string, CatalogEntry> = {
  github: {
    title: "GitHub",
    install: { runtime: "command", steps: [] },
    argv: ["/opt/github-mcp-server"],
    idleTimeoutSeconds: 60,
    secrets: {
      GITHUB_PERSONAL_ACCESS_TOKEN: { as: "env", description: "a fine-grained token" },
      GITHUB_HOST: { as: "env", optional: true, description: "for GitHub Enterprise" },
    },
  },
  memory: { title: "m", install: { runtime: "npm", package: "m" }, argv: ["node"], idleTimeoutSeconds: 60 },
};

/** Stack config as Pulumi hands it over: objects as JSON text, secrets as secret Outputs. */
function source(serverSecrets: unknown): ConfigSource {
  const text = serverSecrets === undefined ? undefined : JSON.stringify(serverSecrets);
  return {
    get: (key) => (key === "serverSecrets" ? text : undefined),
    getSecret: (key) => (key === "serverSecrets" && text !== undefined ? pulumi.secret(text) : undefined),
  };
}

function read(serverSecrets: unknown) {
  const r = new ConfigReader(source(serverSecrets));
  const out = readServerSecrets(r, source(serverSecrets), entries);
  return { problems: r.problems, out };
}

const unwrap = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));

describe("server secrets come from the stack's Pulumi secrets, and pulumi up refuses before touching anything when one is missing", () => {
  it("a missing required secret is a problem naming the server, the secret and the command that sets it", () => {
    const { problems } = read(undefined);
    expect(problems).toEqual([
      "hatago:serverSecrets: server github needs its secret GITHUB_PERSONAL_ACCESS_TOKEN (a fine-grained token): pulumi config set --secret --path 'serverSecrets.github.GITHUB_PERSONAL_ACCESS_TOKEN' <value>",
    ]);
  });

  it("a name the entry does not declare, an unknown server and a blank value are refused, without echoing any value", () => {
    const { problems } = read({
      github: { GITHUB_PERSONAL_ACCESS_TOKEN: " ", OTHER: VALUE },
      nope: { X: VALUE },
    });
    expect(problems.join("\n")).toContain("server github declares no secret OTHER");
    expect(problems.join("\n")).toContain('"nope" is not a server of the catalog');
    expect(problems.join("\n")).toContain("github.GITHUB_PERSONAL_ACCESS_TOKEN must be a non-blank string");
    expect(problems.join("\n")).not.toContain(VALUE);
  });

  it("values become Worker secret bindings HATAGO_SECRET_<SERVER>__<NAME>, and stay a Pulumi secret", async () => {
    const { problems, out } = read({ github: { GITHUB_PERSONAL_ACCESS_TOKEN: VALUE } });
    expect(problems).toEqual([]);
    expect(await unwrap(out)).toEqual({ HATAGO_SECRET_GITHUB__GITHUB_PERSONAL_ACCESS_TOKEN: VALUE });
    expect(await pulumi.isSecret(out)).toBe(true);
  });
});
