import { readdirSync, readFileSync } from "node:fs";

/**
 * Process-tree accounting from /proc (Linux only): memory (RSS and PSS from smaps_rollup) and CPU time
 * (utime + stime from stat) summed over a serving process and everything below it.
 */

/** Kernel clock ticks per second (`getconf CLK_TCK`); 100 on every Linux this runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const MS_PER_TICK = 1000 / CLOCK_TICKS_PER_SECOND;

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime, in clock ticks. */
  readonly cpuTicks: number;
}

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // exited between listing and reading
  }
  // The command name (field 2) may contain spaces and parentheses: fields are counted after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { pid, ppid, cpuTicks: utime + stime };
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** The pids of the roots and all their descendants (by parent pid, so children in their own groups count). */
export function processTree(roots: readonly number[]): number[] {
  const stats = allStats();
  const children = new Map<number, number[]>();
  for (const s of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s.pid]);
  const alive = new Set(stats.map((s) => s.pid));
  const seen = new Set<number>();
  const queue = roots.filter((pid) => alive.has(pid));
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return [...seen];
}

/** CPU time (user + system) used so far by the tree, in ms. Exited processes' time is not counted. */
export function treeCpuMs(roots: readonly number[]): number {
  let ticks = 0;
  for (const pid of processTree(roots)) ticks += readStat(pid)?.cpuTicks ?? 0;
  return ticks * MS_PER_TICK;
}

export interface TreeMemory {
  readonly processes: number;
  readonly rssKiB: number;
  readonly pssKiB: number;
}

export function treeMemory(roots: readonly number[]): TreeMemory {
  let rssKiB = 0;
  let pssKiB = 0;
  let processes = 0;
  for (const pid of processTree(roots)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    } catch {
      continue;
    }
    processes += 1;
    rssKiB += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
    pssKiB += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
  }
  return { processes, rssKiB, pssKiB };
}

export interface ProcessCpu {
  readonly pid: number;
  readonly command: string;
  readonly cpuMs: number;
}

/** CPU ms so far of each process in the tree, with its command line, for finding where a tree spends time. */
export function treeCpuByProcess(roots: readonly number[]): ProcessCpu[] {
  const out: ProcessCpu[] = [];
  for (const pid of processTree(roots)) {
    const stat = readStat(pid);
    if (!stat) continue;
    let command: string;
    try {
      command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    } catch {
      continue;
    }
    out.push({ pid, command, cpuMs: stat.cpuTicks * MS_PER_TICK });
  }
  return out;
}

export interface ProcessRss {
  readonly pid: number;
  readonly command: string;
  readonly rssKiB: number;
}

/** RSS of each process in the tree, with its command line (processes that exit meanwhile are left out). */
export function treeRssByProcess(roots: readonly number[]): ProcessRss[] {
  const out: ProcessRss[] = [];
  for (const pid of processTree(roots)) {
    try {
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
      const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      out.push({ pid, command, rssKiB: Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) });
    } catch {
      // exited between listing and reading
    }
  }
  return out;
}
