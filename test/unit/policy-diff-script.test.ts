import { execFileSync, spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";

// The script runs against a throwaway copy of the repository's policy, committed in a scratch git repo,
// so the test does not depend on this checkout's history or uncommitted changes.
let repo: string;

function runDiff(ref: string) {
  return spawnSync(process.execPath, [path.join(repo, "scripts/policy-diff.ts"), ref], { cwd: repo, encoding: "utf8" });
}

beforeAll(async () => {
  repo = await mkdtemp(path.join(tmpdir(), "hatago-policy-diff-"));
  for (const dir of ["policies", "scripts", "container/src"])
    await cp(path.join(REPO_ROOT, dir), path.join(repo, dir), { recursive: true });
  const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, stdio: "pipe" });
  git("init", "-q");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", ".");
  git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "base");
  // Scripts resolve packages from the repository: link node_modules in.
  execFileSync("ln", ["-s", path.join(REPO_ROOT, "node_modules"), path.join(repo, "node_modules")]);
});

afterAll(async () => {
  await rm(repo, { recursive: true, force: true });
});

describe("npm run policy:diff", () => {
  it("says there is no change when the policy is the same as at the ref", () => {
    const out = runDiff("HEAD");
    expect(out.stderr).toBe("");
    expect(out.status).toBe(0);
    expect(out.stdout).toContain("## Access changes against `HEAD`");
    expect(out.stdout).toContain("**No principal or group gains or loses access.**");
  });

  it("prints who gains or loses which tool after an edit", async () => {
    const file = path.join(repo, "policies/environments/dev.ts");
    const original = await readFile(file, "utf8");
    await writeFile(
      file,
      original.replace('{ subject: "mock:bob", roles: ["writer"]', '{ subject: "mock:bob", roles: ["reader"]'),
    );
    try {
      const out = runDiff("HEAD");
      expect(out.status).toBe(0);
      expect(out.stdout).toContain("#### `mock:bob`");
      expect(out.stdout).toContain("Roles: writer → reader");
      expect(out.stdout).toContain("| `memory` | `create_entities` | write | — |");
      expect(out.stdout).toMatch(/### prod\n\nNo change in access\./);
    } finally {
      await writeFile(file, original);
    }
  });

  it("a bad ref is a clear error and a non-zero exit", () => {
    const out = runDiff("no-such-branch");
    expect(out.status).toBe(2);
    expect(out.stderr).toContain('"no-such-branch" is not a commit in this repository');
    expect(out.stdout).toBe("");
  });

  it("no ref is a usage error", () => {
    const out = spawnSync(process.execPath, [path.join(repo, "scripts/policy-diff.ts")], {
      cwd: repo,
      encoding: "utf8",
    });
    expect(out.status).toBe(2);
    expect(out.stderr).toContain("usage: npm run policy:diff -- <base-git-ref>");
  });
});
