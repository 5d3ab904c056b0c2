// Usage: npm run policy:diff -- <base-git-ref>
// Prints, as Markdown for a pull-request comment, who gains or loses which tool in each environment
// between the policy at <base-git-ref> and the working tree.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { type CompiledPolicy, compilePolicy, ENVIRONMENTS, POLICIES, renderDiffMarkdown } from "../policies/index.ts";
import { REPO_ROOT } from "./lib/server-tools.ts";

function fail(message: string): never {
  process.stderr.write(`policy:diff: ${message}\n`);
  process.exit(2);
}

const baseRef = process.argv[2];
if (!baseRef || baseRef.startsWith("-")) fail("usage: npm run policy:diff -- <base-git-ref>");

let commit: string;
try {
  commit = execFileSync("git", ["rev-parse", "--verify", "--quiet", `${baseRef}^{commit}`], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  }).trim();
} catch {
  fail(`"${baseRef}" is not a commit in this repository (try a branch, tag or commit id; fetch it first in CI)`);
}

// The base policy is evaluated with the base's own compiler: policies/ imports nothing outside itself,
// so the folder alone, extracted from git, is enough.
const dir = await mkdtemp(path.join(tmpdir(), "hatago-policy-base-"));
try {
  const hasPolicies = execFileSync("git", ["ls-tree", "--name-only", commit, "policies/"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
  }).trim();
  let base: Record<string, CompiledPolicy | null> = {};
  if (hasPolicies) {
    const archive = execFileSync("git", ["archive", "--format=tar", commit, "policies/"], {
      cwd: REPO_ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
    execFileSync("tar", ["-x", "-C", dir], { input: archive });
    const entry = path.join(dir, "policies/index.ts");
    if (!existsSync(entry)) fail(`the policy at ${baseRef} has no policies/index.ts`);
    const mod = await import(pathToFileURL(entry).href);
    for (const env of ENVIRONMENTS) {
      const policy = mod.POLICIES?.[env];
      base[env] = policy ? await mod.compilePolicy(policy) : null;
    }
  } else {
    base = Object.fromEntries(ENVIRONMENTS.map((e) => [e, null]));
  }
  const sections = [];
  for (const environment of ENVIRONMENTS) {
    sections.push({
      environment,
      before: base[environment] ?? null,
      after: await compilePolicy(POLICIES[environment]),
    });
  }
  process.stdout.write(renderDiffMarkdown(sections, baseRef));
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
} finally {
  await rm(dir, { recursive: true, force: true });
}
