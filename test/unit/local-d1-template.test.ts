import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { copyD1Template, d1TemplateKey, saveD1Template } from "../../scripts/lib/local-d1-template.ts";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "hatago-d1-template-test-"));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe("local D1 templates (scripts/lib/local-d1-template.ts)", () => {
  it("the key follows the content: the same seed gives the same key, another seed another", async () => {
    const a = await d1TemplateKey("INSERT INTO t VALUES (1);");
    expect(await d1TemplateKey("INSERT INTO t VALUES (1);")).toBe(a);
    expect(await d1TemplateKey("INSERT INTO t VALUES (2);")).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{32}$/);
  });

  it("nothing to copy before a template is saved; afterwards a fresh directory gets every file, -wal included", async () => {
    const templates = await tempDir();
    const first = path.join(await tempDir(), "wrangler");
    const d1 = path.join(first, "v3", "d1", "miniflare-D1DatabaseObject");
    await mkdir(d1, { recursive: true });
    await writeFile(path.join(d1, "db.sqlite"), "main");
    await writeFile(path.join(d1, "db.sqlite-wal"), "wal");
    const second = path.join(await tempDir(), "wrangler");
    expect(await copyD1Template(templates, "k1", second)).toBe(false);

    await saveD1Template(templates, "k1", first);
    await saveD1Template(templates, "k1", first); // a second save of the same content changes nothing
    expect(await copyD1Template(templates, "k1", second)).toBe(true);
    const copied = path.join(second, "v3", "d1", "miniflare-D1DatabaseObject");
    expect(await readFile(path.join(copied, "db.sqlite"), "utf8")).toBe("main");
    expect(await readFile(path.join(copied, "db.sqlite-wal"), "utf8")).toBe("wal");
    expect(await copyD1Template(templates, "another key", path.join(await tempDir(), "w"))).toBe(false);
  });
});
