import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { renderDockerfile, UV_IMAGE } from "../../container/image.ts";
import { BRIDGE_COMMAND, BRIDGE_ENTRY } from "../../container/src/entry.ts";
import { catalog } from "../../policies/catalog.ts";
import type { CatalogEntry } from "../../policies/catalog.types.ts";
import { REPO_ROOT } from "./harness.ts";

/**
 * Docker cannot run here, so the image is checked as text: it must start the bridge exactly as the
 * tests do, as a non-root user under an init process, with production dependencies only.
 */

const read = (file: string) => readFile(path.join(REPO_ROOT, file), "utf8");

/** Dockerfile instructions, continuation lines joined, comments dropped. */
async function instructions(): Promise<{ op: string; args: string }[]> {
  const text = (await read("container/Dockerfile")).replace(/\\\n/g, " ");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const [op = "", ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

describe("container/Dockerfile", () => {
  it("runs the same command the tests start (BRIDGE_COMMAND), under tini as PID 1", async () => {
    const ops = await instructions();
    const cmd = ops.filter((i) => i.op === "CMD").at(-1);
    expect(JSON.parse(cmd?.args ?? "null")).toEqual([...BRIDGE_COMMAND]);
    expect(BRIDGE_COMMAND[1]).toBe(BRIDGE_ENTRY);
    const entrypoint = ops.filter((i) => i.op === "ENTRYPOINT").at(-1);
    expect(JSON.parse(entrypoint?.args ?? "null")).toEqual(["/usr/bin/tini", "--"]);
    expect(ops.some((i) => i.op === "RUN" && /apt-get install .*\btini\b/.test(i.args))).toBe(true);
  });

  it("is linux/amd64 on a Node 22 slim base, non-root, exposing 8080", async () => {
    const ops = await instructions();
    const from = ops.filter((i) => i.op === "FROM");
    expect(from).toHaveLength(1);
    expect(from[0]?.args).toMatch(/^--platform=linux\/amd64 node:22[\w.-]*-slim$/);
    const user = ops.filter((i) => i.op === "USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(["root", "0", "0:0"]).not.toContain(user);
    expect(ops.filter((i) => i.op === "EXPOSE").map((i) => i.args)).toEqual(["8080"]);
    expect(ops.some((i) => i.op === "ENV" && /HOST=0\.0\.0\.0/.test(i.args))).toBe(true);
  });

  it("installs production dependencies only, from the lockfile", async () => {
    const ops = await instructions();
    const installs = ops.filter((i) => i.op === "RUN" && /\bnpm\b/.test(i.args));
    expect(installs).toHaveLength(1);
    expect(installs[0]?.args).toMatch(/npm ci --omit=dev/);
  });
});

describe("package.json dependencies are exactly the bridge's runtime", () => {
  it("the MCP SDK and the two stdio servers, nothing else", async () => {
    const pkg = JSON.parse(await read("package.json")) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).sort()).toEqual([
      "@modelcontextprotocol/sdk",
      "@modelcontextprotocol/server-everything",
      "@modelcontextprotocol/server-memory",
    ]);
  });

  it("every package the bridge imports is a runtime dependency (nothing resolves only in dev)", async () => {
    const pkg = JSON.parse(await read("package.json")) as { dependencies: Record<string, string> };
    const files = [
      ...(await readdir(path.join(REPO_ROOT, "container/src"))).map((f) => `container/src/${f}`),
      "policies/catalog.ts",
      "policies/catalog.types.ts",
    ].filter((f) => f.endsWith(".ts"));
    for (const file of files) {
      const source = await read(file);
      for (const [, spec = ""] of source.matchAll(/from\s+"([^"]+)"/g)) {
        if (spec.startsWith(".") || spec.startsWith("node:")) continue;
        const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : (spec.split("/")[0] ?? spec);
        expect(Object.keys(pkg.dependencies), `${file} imports ${spec}`).toContain(name);
      }
      // Relative imports must stay inside what the image copies (container/src and policies).
      for (const [, spec = ""] of source.matchAll(/from\s+"(\.[^"]+)"/g)) {
        const target = path.relative(REPO_ROOT, path.resolve(path.dirname(path.join(REPO_ROOT, file)), spec));
        expect(target, `${file} imports ${spec}`).toMatch(/^(container\/src|policies)\//);
      }
    }
  });
});

describe(".dockerignore (build context is the repository root)", () => {
  // It admits container/src/ and, elsewhere, single files: the bridge's import graph (test/infra/
  // bundle-inputs.test.ts derives it from the bundler), so a policy environment does not rebuild the image.
  it("excludes everything except files under what the Dockerfile copies", async () => {
    const lines = (await read(".dockerignore"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    expect(lines[0]).toBe("*");
    const included = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    expect(included).toContain("package.json");
    expect(included).toContain("package-lock.json");
    expect(included.some((entry) => "container/src/main.ts".startsWith(entry))).toBe(true);
    const copies = (await instructions())
      .filter((i) => i.op === "COPY")
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const file of included) {
      expect(
        copies.some((source) => file === source || file.startsWith(source)),
        `${file} is copied`,
      ).toBe(true);
    }
  });
});

describe("the image is rendered from the catalog (container/image.ts), each runtime only where an entry needs it", () => {
  it("container/Dockerfile is exactly what `npm run image:dockerfile` renders from policies/catalog.ts", async () => {
    expect(await read("container/Dockerfile"), "run npm run image:dockerfile").toBe(renderDockerfile(catalog));
  });

  const npmOnly: Record<string, CatalogEntry> = {
    a: {
      title: "a",
      install: { runtime: "npm", package: "x" },
      argv: ["node", "./node_modules/x/i.js"],
      idleTimeoutSeconds: 1,
    },
  };

  it("npm entries only: no Python, no uv, no downloads", () => {
    const text = renderDockerfile(npmOnly);
    expect(text).not.toMatch(/python3|uv|ADD /);
    expect(text).toMatch(/apt-get install -y --no-install-recommends tini \\/);
  });

  it("a Python package gets Python 3 and uv, in its own virtual environment at an exact version", () => {
    const text = renderDockerfile({
      ...npmOnly,
      fetch: {
        title: "fetch",
        install: { runtime: "python", package: { name: "mcp-server-fetch", version: "2025.4.7" } },
        argv: ["python", "-m", "mcp_server_fetch"],
        idleTimeoutSeconds: 1,
      },
    });
    expect(text).toContain("python3 tini");
    expect(text).toContain(`COPY --from=${UV_IMAGE} /uv /usr/local/bin/uv`);
    expect(text).toContain("uv venv --python /usr/bin/python3 /opt/hatago/python/mcp-server-fetch");
    expect(text).toContain(
      "uv pip install --python /opt/hatago/python/mcp-server-fetch/bin/python --no-cache mcp-server-fetch==2025.4.7",
    );
  });

  it("a command entry's steps: Debian packages, a repository file, and a download checked against its SHA-256", () => {
    const sha = "a".repeat(64);
    const text = renderDockerfile({
      ...npmOnly,
      gh: {
        title: "gh",
        install: {
          runtime: "command",
          steps: [
            { kind: "debian", packages: ["git"] },
            { kind: "copy", from: "servers/gh/config.json", to: "/etc/gh/config.json" },
            { kind: "download", url: "https://example.com/gh.tar", sha256: sha, to: "/opt/gh", executable: true },
          ],
        },
        argv: ["/opt/gh", "stdio"],
        idleTimeoutSeconds: 1,
      },
    });
    expect(text).toContain("--no-install-recommends git tini");
    expect(text).toContain(`ADD --checksum=sha256:${sha} https://example.com/gh.tar /opt/gh`);
    expect(text).toContain("RUN chmod 0755 /opt/gh");
    expect(text).toContain("COPY servers/gh/config.json /etc/gh/config.json");
  });

  it("refuses what it cannot render safely: an unpinned download, plain http, a path out of the repository", () => {
    const command = (step: CatalogEntry["install"]): Record<string, CatalogEntry> => ({
      x: { title: "x", install: step, argv: ["/opt/x"], idleTimeoutSeconds: 1 },
    });
    const download = (sha256: string, url = "https://e.com/x") =>
      command({ runtime: "command", steps: [{ kind: "download", url, sha256, to: "/opt/x" }] });
    expect(() => renderDockerfile(download("abc"))).toThrow(/sha256/);
    expect(() => renderDockerfile(download("b".repeat(64), "http://e.com/x"))).toThrow(/https/);
    expect(() =>
      renderDockerfile(command({ runtime: "command", steps: [{ kind: "copy", from: "../secrets", to: "/x" }] })),
    ).toThrow(/inside the repository/);
    expect(() =>
      renderDockerfile(command({ runtime: "python", package: { name: "x; rm -rf /", version: "1" } })),
    ).toThrow(/refusing/);
  });
});
