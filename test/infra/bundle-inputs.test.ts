import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BRIDGE_ENTRY } from "../../container/src/entry.ts";
import {
  BRIDGE_IMAGE_ENTRY,
  BRIDGE_SOURCE_DIR,
  bridgeImageContextSha256,
  bridgeImageFiles,
  dockerContextFiles,
  moduleFiles,
  WORKER_ENTRY,
  workerBundleSha256,
} from "../../infra/bundle-inputs.ts";
import { REPO_ROOT } from "../../infra/source-hash.ts";
import { WORKER_MAIN } from "../../infra/wrangler-config.ts";
import { compilePolicy } from "../../policies/index.ts";
import type { Policy } from "../../policies/policy.types.ts";

describe("what the image and the Worker are built from is derived from the bundler's inputs", () => {
  it("starts from the same entry points the deployment runs", () => {
    expect(WORKER_ENTRY).toBe(WORKER_MAIN);
    expect(BRIDGE_IMAGE_ENTRY).toBe(BRIDGE_ENTRY);
  });

  it(".dockerignore admits the bridge's import graph, the npm manifests, and nothing else outside container/src/", () => {
    const needed = bridgeImageFiles(REPO_ROOT);
    const admitted = dockerContextFiles(REPO_ROOT);
    expect(
      needed.filter((f) => !admitted.includes(f)),
      "add these as !<file> lines to .dockerignore",
    ).toEqual([]);
    const extra = admitted.filter((f) => !needed.includes(f) && !f.startsWith(BRIDGE_SOURCE_DIR));
    expect(extra, "the image would rebuild when these change: remove them from .dockerignore").toEqual([]);
  });

  it("no policy environment is part of the Worker or the image", () => {
    const files = [...moduleFiles(REPO_ROOT, WORKER_ENTRY), ...bridgeImageFiles(REPO_ROOT)];
    expect(files.filter((f) => f.startsWith("policies/environments/"))).toEqual([]);
    expect(files).toContain("policies/catalog.ts");
  });
});

describe("a policy-only change replaces no image and redeploys no Worker (issue 15, defect 3)", () => {
  // A copy of what the hashes read, edited the way a policy pull request edits the repository.
  let root: string;
  const hashes = () => ({ worker: workerBundleSha256(root), image: bridgeImageContextSha256(root) });
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "hatago-bundle-inputs-"));
    for (const entry of [
      "worker",
      "policies",
      "container",
      "servers",
      "package.json",
      "package-lock.json",
      ".dockerignore",
    ]) {
      await cp(path.join(REPO_ROOT, entry), path.join(root, entry), { recursive: true });
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("a new binding in policies/environments/dev.ts changes the seed's hash, and neither the image's nor the Worker's", async () => {
    const file = path.join(root, "policies/environments/dev.ts");
    const load = async () => ((await import(`${file}?v=${Date.now()}${Math.random()}`)) as { default: Policy }).default;
    const seedBefore = (await compilePolicy(await load())).hash;
    const before = hashes();
    const text = await readFile(file, "utf8");
    const edited = text.replace(
      /bindings: \[/,
      'bindings: [\n    { subject: "mock:policy-change-test", roles: ["reader"] },',
    );
    expect(edited).not.toBe(text);
    await writeFile(file, edited);
    expect((await compilePolicy(await load())).hash).not.toBe(seedBefore);
    expect(hashes()).toEqual(before);
  });

  it("is not vacuous: a catalog change changes both, a Worker change only the Worker's", async () => {
    const before = hashes();
    await appendFile(path.join(root, "worker/index.ts"), "\n// edited\n");
    const afterWorker = hashes();
    expect(afterWorker.worker).not.toBe(before.worker);
    expect(afterWorker.image).toBe(before.image);
    await appendFile(path.join(root, "policies/catalog.ts"), "\n// edited\n");
    const afterCatalog = hashes();
    expect(afterCatalog.worker).not.toBe(afterWorker.worker);
    expect(afterCatalog.image).not.toBe(afterWorker.image);
  });
});
