import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../infra/source-hash.ts";

// The workflows cannot run here (no GitHub, no Pulumi CLI); these checks pin the properties the
// deployment relies on, so an edit that drops one fails the build.
const yaml = createRequire(import.meta.url)("js-yaml") as { load(text: string): unknown };

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
const pulumiStep = (job: Job | undefined) => job?.steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
const environmentOf = (job: Job | undefined) =>
  typeof job?.environment === "string" ? job.environment : job?.environment?.name;

describe("pull-request workflow", () => {
  const pr = workflow("pull-request.yml");

  it("runs the tests (npm test)", () => {
    expect(pr.jobs.test?.steps.map((s) => s.run)).toContain("npm test");
  });

  it("previews staging and prod with a PR comment and the diff", () => {
    const preview = pr.jobs.preview;
    expect(preview?.strategy?.matrix.stack).toEqual(["staging", "prod"]);
    expect(pulumiStep(preview)?.with).toMatchObject({ command: "preview", "comment-on-pr": true, diff: true });
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
