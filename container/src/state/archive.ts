import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";

/**
 * One data directory as one archive: what the bridge saves and restores (keeper.ts).
 *
 *     gzip( "HSTATE1\n" entry* "END\n" sha256(everything before it) )
 *     entry = kind u8 (1 file, 2 directory) · path length u32 · path (UTF-8, "/"-separated, relative)
 *             · mode u32 · size u64 · bytes
 *
 * Regular files and directories only: a symbolic link, socket or device is left out (a link could point
 * anywhere on restore). The trailing digest makes a torn archive unreadable rather than half restored.
 */

const MAGIC = Buffer.from("HSTATE1\n");
const END = Buffer.from("END\n");
const FILE = 1;
const DIRECTORY = 2;
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface DirEntry {
  readonly rel: string;
  readonly kind: typeof FILE | typeof DIRECTORY;
  readonly mode: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** What is in a directory: entries in a fixed order, their total file bytes, and a fingerprint of both. */
export interface DirListing {
  readonly entries: readonly DirEntry[];
  readonly bytes: number;
  /** Changes when any entry's path, size, mode or modification time does: the "anything to save?" check. */
  readonly fingerprint: string;
}

/**
 * Lists `dir` (recursively, sorted). `exclude` names top-level entries never saved (secret files that
 * the bridge writes there for the process: they come from the stack's secrets on every start).
 */
export async function listDir(dir: string, exclude: ReadonlySet<string> = new Set()): Promise<DirListing> {
  const entries: DirEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(dir, rel)).catch(() => [] as string[])).sort();
    for (const name of names) {
      if (rel === "" && exclude.has(name)) continue;
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const stat = await lstat(path.join(dir, childRel)).catch(() => null);
      if (!stat) continue; // removed while we looked
      if (stat.isDirectory()) {
        entries.push({ rel: childRel, kind: DIRECTORY, mode: stat.mode & 0o777, size: 0, mtimeMs: 0 });
        await walk(childRel);
      } else if (stat.isFile()) {
        entries.push({ rel: childRel, kind: FILE, mode: stat.mode & 0o777, size: stat.size, mtimeMs: stat.mtimeMs });
      }
    }
  };
  await walk("");
  const hash = createHash("sha256");
  let bytes = 0;
  for (const e of entries) {
    bytes += e.size;
    hash.update(`${e.kind}\0${e.rel}\0${e.mode}\0${e.size}\0${e.mtimeMs}\n`);
  }
  return { entries, bytes, fingerprint: hash.digest("hex") };
}

/** Reads the listed entries into one compressed archive. */
export async function packDir(dir: string, listing: DirListing): Promise<Buffer> {
  const parts: Buffer[] = [MAGIC];
  for (const e of listing.entries) {
    const rel = Buffer.from(e.rel, "utf8");
    const content = e.kind === FILE ? await readFile(path.join(dir, e.rel)).catch(() => Buffer.alloc(0)) : null;
    const header = Buffer.alloc(1 + 4 + rel.length + 4 + 8);
    let at = header.writeUInt8(e.kind, 0);
    at = header.writeUInt32BE(rel.length, at);
    at += rel.copy(header, at);
    at = header.writeUInt32BE(e.mode, at);
    header.writeBigUInt64BE(BigInt(content?.length ?? 0), at);
    parts.push(header);
    if (content) parts.push(content);
  }
  parts.push(END);
  const body = Buffer.concat(parts);
  return gzipAsync(Buffer.concat([body, createHash("sha256").update(body).digest()]));
}

export class ArchiveError extends Error {}

interface Unpacked {
  readonly kind: typeof FILE | typeof DIRECTORY;
  readonly rel: string;
  readonly mode: number;
  readonly content: Buffer;
}

/** Parses and checks an archive completely (digest, every path) before anything touches the disk. */
export async function parseArchive(archive: Uint8Array): Promise<Unpacked[]> {
  let raw: Buffer;
  try {
    raw = await gunzipAsync(archive);
  } catch {
    throw new ArchiveError("the archive is not gzip data (torn or foreign)");
  }
  if (raw.length < MAGIC.length + END.length + 32) throw new ArchiveError("the archive is truncated");
  const body = raw.subarray(0, raw.length - 32);
  const digest = createHash("sha256").update(body).digest();
  if (!digest.equals(raw.subarray(raw.length - 32))) throw new ArchiveError("the archive's digest does not match");
  if (!body.subarray(0, MAGIC.length).equals(MAGIC)) throw new ArchiveError("not a state archive");
  if (!body.subarray(body.length - END.length).equals(END)) throw new ArchiveError("the archive has no end mark");
  const out: Unpacked[] = [];
  let at = MAGIC.length;
  const limit = body.length - END.length;
  while (at < limit) {
    if (at + 9 > limit) throw new ArchiveError("truncated entry header");
    const kind = body.readUInt8(at);
    const relLength = body.readUInt32BE(at + 1);
    at += 5;
    if (at + relLength + 12 > limit) throw new ArchiveError("truncated entry header");
    const rel = body.subarray(at, at + relLength).toString("utf8");
    at += relLength;
    const mode = body.readUInt32BE(at) & 0o777;
    const size = Number(body.readBigUInt64BE(at + 4));
    at += 12;
    if (at + size > limit) throw new ArchiveError("truncated entry");
    if (kind !== FILE && kind !== DIRECTORY) throw new ArchiveError("unknown entry kind");
    assertSafeRelative(rel);
    out.push({ kind, rel, mode, content: body.subarray(at, at + size) });
    at += size;
  }
  return out;
}

/**
 * SECURITY: an entry's path stays inside the directory: relative, "/"-separated, no "." or ".." segment,
 * no NUL, no backslash. Archives come from our own storage, but a restore must not be a way out.
 */
function assertSafeRelative(rel: string): void {
  const segments = rel.split("/");
  const bad =
    rel.length === 0 ||
    rel.includes("\0") ||
    rel.includes("\\") ||
    segments.some((s) => s === "" || s === "." || s === "..");
  if (bad) throw new ArchiveError(`unsafe path in archive: ${JSON.stringify(rel.slice(0, 80))}`);
}

/**
 * Replaces `dir` with the archive's contents, or leaves it as it was. The archive is checked whole, written
 * to a sibling directory, and swapped in with renames, so a crash leaves either the old directory or the
 * new one (a leftover sibling is removed on the next restore).
 */
export async function restoreDir(dir: string, archive: Uint8Array): Promise<void> {
  const entries = await parseArchive(archive);
  const staging = `${dir}.restoring`;
  const old = `${dir}.replaced`;
  await rm(staging, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
  await mkdir(staging, { recursive: true, mode: 0o700 });
  for (const e of entries) {
    const target = path.join(staging, ...e.rel.split("/"));
    if (e.kind === DIRECTORY) await mkdir(target, { recursive: true, mode: e.mode | 0o700 });
    else {
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      await writeFile(target, e.content, { mode: e.mode | 0o600 });
    }
  }
  await rename(dir, old).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
  await rename(staging, dir);
  await rm(old, { recursive: true, force: true });
}
