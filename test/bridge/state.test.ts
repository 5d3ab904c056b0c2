// State that survives (issue 13), the bridge's side: the archive of a data directory, its restore, and the
// keeper's saves. The Worker's store is tested in workerd (test/workers/bridge-state.test.ts) and the whole
// path end to end (test/e2e/state.test.ts); here a FakeStateStore (an in-memory map, which can break a
// save mid-way on purpose) stands in for it.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../container/src/log.ts";
import { ArchiveError, listDir, packDir, parseArchive, restoreDir } from "../../container/src/state/archive.ts";
import { StateKeeper } from "../../container/src/state/keeper.ts";
import type { StateStore } from "../../container/src/state/store.ts";

/** FakeStateStore: the Worker's R2-backed store cannot run in Node; this keeps archives in a map. */
class FakeStateStore implements StateStore {
  readonly objects = new Map<string, Uint8Array>();
  /** When set, the next save receives this many bytes and then the connection breaks. */
  breakNextSaveAfter: number | null = null;
  async load(server: string, principal: string) {
    return this.objects.get(`${server}/${principal}`) ?? null;
  }
  async save(server: string, principal: string, archive: Buffer) {
    if (this.breakNextSaveAfter !== null) {
      const received = archive.subarray(0, this.breakNextSaveAfter);
      this.breakNextSaveAfter = null;
      // Like the Worker: only a complete, checked body is ever stored; this one is not.
      void received;
      throw new Error("connection reset after a partial upload");
    }
    this.objects.set(`${server}/${principal}`, new Uint8Array(archive));
  }
}

let root: string;
const lines: string[] = [];
const log = createLogger("debug", (line) => lines.push(line));

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "hatago-state-test-"));
  lines.length = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function keeper(store: StateStore, dir: string, options: { maxBytes?: number } = {}) {
  return new StateKeeper({
    label: "memory#1",
    server: "memory",
    principal: "mock:bob",
    dir,
    store,
    maxBytes: options.maxBytes ?? 1024 * 1024,
    intervalMs: 3_600_000,
    exclude: new Set([".secret-token"]),
    busy: () => false,
    log,
  });
}

describe("the archive of a data directory", () => {
  it("restores files, nested directories and modes exactly", async () => {
    const dir = path.join(root, "a");
    await mkdir(path.join(dir, "nested/deeper"), { recursive: true });
    await writeFile(path.join(dir, "memory.jsonl"), '{"type":"entity"}\n');
    await writeFile(path.join(dir, "nested/deeper/blob.bin"), Buffer.from([0, 1, 2, 255]), { mode: 0o600 });
    const archive = await packDir(dir, await listDir(dir));
    const target = path.join(root, "b");
    await restoreDir(target, archive);
    expect(await readFile(path.join(target, "memory.jsonl"), "utf8")).toBe('{"type":"entity"}\n');
    expect([...(await readFile(path.join(target, "nested/deeper/blob.bin")))]).toEqual([0, 1, 2, 255]);
  });

  it("leaves out symbolic links and the process's secret files", async () => {
    const dir = path.join(root, "a");
    await mkdir(dir);
    await writeFile(path.join(dir, "kept.txt"), "kept");
    await writeFile(path.join(dir, ".secret-token"), "s3cr3t");
    await symlink("/etc/passwd", path.join(dir, "link"));
    const listing = await listDir(dir, new Set([".secret-token"]));
    expect(listing.entries.map((e) => e.rel)).toEqual(["kept.txt"]);
    const entries = await parseArchive(await packDir(dir, listing));
    expect(entries.map((e) => e.rel)).toEqual(["kept.txt"]);
  });

  it("a torn archive is refused whole, and the directory stays as it was", async () => {
    const dir = path.join(root, "a");
    await mkdir(dir);
    await writeFile(path.join(dir, "memory.jsonl"), "new version ".repeat(1000));
    const archive = await packDir(dir, await listDir(dir));
    const target = path.join(root, "b");
    await mkdir(target);
    await writeFile(path.join(target, "memory.jsonl"), "previous version");
    for (const torn of [archive.subarray(0, archive.length - 10), archive.subarray(0, 20)]) {
      await expect(restoreDir(target, torn)).rejects.toBeInstanceOf(ArchiveError);
      expect(await readFile(path.join(target, "memory.jsonl"), "utf8")).toBe("previous version");
    }
  });

  describe("bypass attempts: an archive cannot write outside its directory", () => {
    it("a path with '..' is refused before anything is written", async () => {
      const dir = path.join(root, "a");
      await mkdir(dir);
      await writeFile(path.join(dir, "xx"), "escape");
      const archive = await packDir(dir, {
        ...(await listDir(dir)),
        entries: [{ rel: "../xx", kind: 1, mode: 0o600, size: 6, mtimeMs: 0 }],
      });
      const target = path.join(root, "b", "c");
      await expect(restoreDir(target, archive)).rejects.toThrow(/unsafe path/);
      expect(await readdir(root)).toEqual(["a"]);
    });
  });
});

describe("the keeper: restore before the first start, save atomically, refuse over the limit", () => {
  it("restores what was saved into an empty (new) directory", async () => {
    const store = new FakeStateStore();
    const first = path.join(root, "first");
    const k1 = keeper(store, first);
    await k1.prepare();
    await writeFile(path.join(first, "memory.jsonl"), "bob's entity\n");
    await k1.save("exit");
    k1.dispose();
    expect(k1.snapshot()).toMatchObject({ restored: true, saves: 1, problem: null });

    const second = path.join(root, "second"); // a new container: its disk is empty
    const k2 = keeper(store, second);
    await k2.prepare();
    k2.dispose();
    expect(await readFile(path.join(second, "memory.jsonl"), "utf8")).toBe("bob's entity\n");
  });

  it("a save interrupted mid-way leaves the previous version in the store, and the next save succeeds", async () => {
    const store = new FakeStateStore();
    const dir = path.join(root, "d");
    const k = keeper(store, dir);
    await k.prepare();
    await writeFile(path.join(dir, "memory.jsonl"), "version 1\n");
    await k.save("quiet");
    const v1 = store.objects.get("memory/mock:bob");

    await writeFile(path.join(dir, "memory.jsonl"), "version 2, whose upload breaks\n");
    store.breakNextSaveAfter = 16;
    await k.save("interval");
    expect(store.objects.get("memory/mock:bob")).toBe(v1);
    expect(k.snapshot()).toMatchObject({ saves: 1, failed: 1 });
    expect(k.snapshot().problem).toMatch(/save failed: connection reset/);
    expect(lines.some((l) => l.includes('"state.save_failed"'))).toBe(true);

    // What is in the store is still a whole, readable version 1.
    const restored = path.join(root, "restored");
    await restoreDir(restored, v1 ?? new Uint8Array());
    expect(await readFile(path.join(restored, "memory.jsonl"), "utf8")).toBe("version 1\n");

    await k.save("interval");
    k.dispose();
    expect(k.snapshot()).toMatchObject({ saves: 2, problem: null });
  });

  it("over the size limit: the save is refused with a clear log line, /health's problem, and the last good version kept", async () => {
    const store = new FakeStateStore();
    const dir = path.join(root, "d");
    const k = keeper(store, dir, { maxBytes: 1_000 });
    await k.prepare();
    await writeFile(path.join(dir, "memory.jsonl"), "small\n");
    await k.save("quiet");
    const good = store.objects.get("memory/mock:bob");
    await writeFile(path.join(dir, "memory.jsonl"), "x".repeat(2_000));
    await k.save("quiet");
    await k.save("interval"); // the same content again: counted, logged once
    k.dispose();
    expect(store.objects.get("memory/mock:bob")).toBe(good);
    expect(k.snapshot()).toMatchObject({ saves: 1, refused: 2 });
    expect(k.snapshot().problem).toMatch(/over its limit of 1000 \(stateMaxBytes\)/);
    const refusals = lines.filter((l) => l.includes('"state.save_refused"'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toContain('"limit":1000');
    expect(refusals[0]).not.toContain("mock:bob");
  });

  it("a store that cannot answer never lets the process start on an empty directory", async () => {
    const unreachable: StateStore = {
      load: async () => {
        throw new Error("connection refused");
      },
      save: async () => {
        throw new Error("connection refused");
      },
    };
    const k = keeper(unreachable, path.join(root, "d"));
    const prepared = k.prepare().then(
      () => "started",
      () => "refused",
    );
    const first = await Promise.race([prepared, new Promise((r) => setTimeout(() => r("still waiting"), 500))]);
    expect(first).toBe("still waiting"); // retrying, not starting
    expect(k.snapshot().restored).toBe(false);
    await k.save("exit"); // nothing restored: nothing may be saved over the store's version
    expect(lines.some((l) => l.includes('"state.saved"'))).toBe(false);
    k.dispose();
  });
});
