import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Machine } from "./results.ts";
import { REPO_ROOT } from "./targets/target.ts";

export function machine(): Machine {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  return {
    cpus: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memoryGiB: Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024,
    kernel: `${os.type()} ${os.release()}`,
    loadAtStart: os.loadavg(),
    loadAtEnd: [],
  };
}

function packageVersion(dir: string): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, dir, "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? "?";
  } catch {
    return "not installed";
  }
}

export function versions(): Record<string, string> {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
  } catch {
    // not a git checkout
  }
  return {
    "hatago-auth commit": commit,
    node: process.version,
    "@modelcontextprotocol/sdk (the bench's clients, the bridge, the Worker)": packageVersion(
      "node_modules/@modelcontextprotocol/sdk",
    ),
    "supergateway's own SDK copy": packageVersion("node_modules/supergateway/node_modules/@modelcontextprotocol/sdk"),
    "@modelcontextprotocol/server-everything": packageVersion("node_modules/@modelcontextprotocol/server-everything"),
    "@modelcontextprotocol/server-memory": packageVersion("node_modules/@modelcontextprotocol/server-memory"),
    supergateway: packageVersion("node_modules/supergateway"),
    "mcp-proxy": packageVersion("node_modules/mcp-proxy"),
    wrangler: packageVersion("node_modules/wrangler"),
    "workerd (wrangler's)": packageVersion("node_modules/wrangler/node_modules/@cloudflare/workerd-linux-64"),
  };
}
