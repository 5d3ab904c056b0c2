import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ConfigError, type ConfigSource, parseStackConfig } from "../../infra/config.ts";
import { nodeVersionProblem } from "../../infra/node-version.js";
import { REPO_ROOT } from "../../infra/source-hash.ts";

// js-yaml is what @pulumi/pulumi itself reads YAML with; it ships no types, hence the narrow shape.
const yaml = createRequire(import.meta.url)("js-yaml") as { load(text: string): unknown };

function read(file: string): Record<string, unknown> {
  return yaml.load(readFileSync(path.join(REPO_ROOT, file), "utf8")) as Record<string, unknown>;
}

/** The stack file's config as Pulumi hands it to the program: strings, with lists and objects as JSON. */
function stackSource(
  file: string,
  secrets: Record<string, string> = {},
  extra: Record<string, string> = {},
): ConfigSource {
  const config = (read(file).config ?? {}) as Record<string, unknown>;
  const values: Record<string, string> = { ...extra };
  for (const [key, value] of Object.entries(config)) {
    const name = key.replace(/^hatago:/, "");
    values[name] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return {
    get: (key) => values[key],
    getSecret: (key) => (secrets[key] === undefined ? undefined : pulumi.secret(secrets[key])),
  };
}

describe("Pulumi.yaml: how Pulumi runs the program", () => {
  const project = read("Pulumi.yaml") as {
    name: string;
    main: string;
    runtime: { name: string; options: Record<string, unknown> };
  };

  it("is the nodejs runtime loading infra/main.js, then infra/index.ts itself, without ts-node (typescript: false)", () => {
    expect(project.name).toBe("hatago");
    expect(project.main).toBe("infra/main.js");
    expect(project.runtime).toEqual({ name: "nodejs", options: { typescript: false, packagemanager: "npm" } });
  });

  it("is an ES module package on a Node that strips types (package.json type and engines)", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
    expect(pkg.type).toBe("module");
    expect(pkg.engines.node).toMatch(/^>=22\.(1[89]|[2-9][0-9])/);
  });
});

describe("a first `pulumi up` finds a Node that runs the program (issue 15, defect 10)", () => {
  it("the entry point refuses a Node too old to strip types, and says how to use the pinned one", () => {
    expect(nodeVersionProblem("20.19.5")).toMatch(/Node 20\.19\.5.*needs Node >= 22\.18.*npm run pulumi -- up/);
    expect(nodeVersionProblem("v22.17.1")).not.toBeNull();
    expect(nodeVersionProblem("22.18.0")).toBeNull();
    expect(nodeVersionProblem("24.1.0")).toBeNull();
  });

  it("`npm run pulumi` puts the pinned Node first on PATH, and that Node is new enough", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"));
    expect(pkg.scripts.pulumi).toBe("pulumi");
    expect(nodeVersionProblem(pkg.devDependencies.node)).toBeNull();
    // npm run prepends node_modules/.bin, where the `node` package links its binary.
    expect(existsSync(path.join(REPO_ROOT, "node_modules/.bin/node"))).toBe(true);
  });
});

describe("stack files validate against infra/config.ts", () => {
  it("Pulumi.dev.yaml is ready to use: it asks only for the two account values", () => {
    let problems: readonly string[] = [];
    try {
      parseStackConfig("dev", stackSource("Pulumi.dev.yaml"));
    } catch (error) {
      if (error instanceof ConfigError) problems = error.problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(/^hatago:accountId: required/),
      expect.stringMatching(/^hatago:workersDevSubdomain: required/),
    ]);
    const config = parseStackConfig(
      "dev",
      stackSource(
        "Pulumi.dev.yaml",
        {},
        { accountId: "0123456789abcdef0123456789abcdef", workersDevSubdomain: "acme" },
      ),
    );
    expect(config).toMatchObject({ environment: "dev", login: { provider: "mock" } });
  });

  it("Pulumi.staging.yaml (example) is valid once its secret is set", () => {
    const config = parseStackConfig("staging", stackSource("Pulumi.staging.yaml", { githubClientSecret: "s" }));
    expect(config).toMatchObject({ environment: "staging", login: { provider: "github", orgAllowlist: ["acme"] } });
  });

  it("Pulumi.prod.yaml (example) is valid: Access login, admin behind Access, protected data", () => {
    const config = parseStackConfig("prod", stackSource("Pulumi.prod.yaml"));
    expect(config).toMatchObject({ environment: "prod", protectData: true, login: { provider: "access" } });
    expect(config.adminAccess?.emails).toEqual(["platform-admins@example.com"]);
  });

  it("no stack file holds a secret in plain text (secrets are `secure:` values set with --secret)", () => {
    for (const file of ["Pulumi.dev.yaml", "Pulumi.staging.yaml", "Pulumi.prod.yaml"]) {
      const config = (read(file).config ?? {}) as Record<string, unknown>;
      for (const key of Object.keys(config)) expect(key, file).not.toMatch(/Secret|bridgeSecret|apiToken/);
    }
  });
});
