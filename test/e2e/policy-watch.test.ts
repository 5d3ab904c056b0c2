// npm start applies policy edits without a restart (issue 16). Ports 18640–18642. The stack watches a COPY
// of policies/ (a test never edits the repository's own files).
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../scripts/lib/server-tools.ts";
import { type Connected, connectAs } from "./helpers/mcp-client.ts";
import { startTestStack, type TestStack } from "./helpers/test-stack.ts";

let stack: TestStack;
let policies: string;
let dave: Connected;

async function outputAfter(start: number, pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = stack.output.slice(start).find((l) => pattern.test(l));
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${stack.output.slice(-20).join("\n")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  policies = await mkdtemp(path.join(tmpdir(), "hatago-policies-"));
  await cp(path.join(REPO_ROOT, "policies"), policies, { recursive: true });
  stack = await startTestStack(18_640, { watchPolicies: true, policiesDir: policies });
  dave = await connectAs(stack.url, "dave");
}, 180_000);
afterAll(async () => {
  await dave?.client.close().catch(() => {});
  await stack?.dispose();
  await rm(policies, { recursive: true, force: true });
});

describe("npm start re-seeds the local D1 when the policy changes, within seconds, without a restart", () => {
  it("dave (no role) gets the reader role by an edit of environments/dev.ts, and his next tools/list shows it", async () => {
    expect((await dave.client.listTools()).tools).toEqual([]);
    const file = path.join(policies, "environments/dev.ts");
    const text = await readFile(file, "utf8");
    const edited = text.replace(/bindings: \[/, 'bindings: [\n    { subject: "mock:dave", roles: ["reader"] },');
    expect(edited).not.toBe(text);
    const mark = stack.output.length;
    await writeFile(file, edited);
    expect(await outputAfter(mark, /policy "dev" [0-9a-f]{12} seeded \(.*mock:dave: \+\d+/, 20_000)).toBeTruthy();
    const names = (await dave.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("memory__read_graph");
    expect(names).not.toContain("memory__create_entities");
  }, 60_000);

  it("an invalid policy is refused with the compiler's message, and the last good one stays seeded", async () => {
    const file = path.join(policies, "environments/dev.ts");
    const text = await readFile(file, "utf8");
    const mark = stack.output.length;
    await writeFile(
      file,
      text.replace(/bindings: \[/, 'bindings: [\n    { subject: "mock:dave", roles: ["no-such-role"] },'),
    );
    const refused = await outputAfter(mark, /policy edit refused/, 20_000);
    expect(stack.output.slice(mark).join("\n")).toContain("no-such-role");
    expect(refused).toContain("the last good policy stays seeded");
    expect((await dave.client.listTools()).tools.map((t) => t.name)).toContain("memory__read_graph");
  }, 60_000);
});
