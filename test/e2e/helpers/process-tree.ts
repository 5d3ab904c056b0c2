import { readdirSync, readFileSync } from "node:fs";

/**
 * One process, identified so that a recycled PID is never mistaken for it: the PID plus its start time
 * (clock ticks since boot, /proc/<pid>/stat field 22).
 */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTicks: string;
  readonly command: string;
}

interface StatLine {
  readonly pid: number;
  readonly command: string;
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly startTicks: string;
}

/** Parses /proc/<pid>/stat; the command sits in parentheses and may itself contain spaces and parentheses. */
function readStat(pid: number): StatLine | null {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone
  }
  const open = raw.indexOf("(");
  const close = raw.lastIndexOf(")");
  if (open < 0 || close < open) return null;
  // Fields after the command: state(3) ppid(4) pgrp(5) … starttime(22) → indexes 0, 1, 2 … 19.
  const rest = raw
    .slice(close + 2)
    .trim()
    .split(" ");
  const state = rest[0];
  const starttime = rest[19];
  if (state === undefined || starttime === undefined) return null;
  return {
    pid,
    command: raw.slice(open + 1, close),
    state,
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    startTicks: starttime,
  };
}

function allStats(): StatLine[] {
  const stats: StatLine[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.push(stat);
  }
  return stats;
}

/**
 * Every live process that descends from one of `roots` (by parent PID, transitively) or belongs to a
 * process group one of them leads, roots included. Take this snapshot BEFORE stopping: once a parent
 * dies its children are re-parented to init and the family tree is lost.
 */
export function processFamily(roots: readonly number[]): ProcessIdentity[] {
  const stats = allStats();
  const members = new Set<number>(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of stats) {
      if (members.has(s.pid)) continue;
      if (members.has(s.ppid) || roots.includes(s.pgrp)) {
        members.add(s.pid);
        grew = true;
      }
    }
  }
  return stats
    .filter((s) => members.has(s.pid) && s.state !== "Z")
    .map(({ pid, startTicks, command }) => ({ pid, startTicks, command }));
}

/** The processes of `family` that still run: same PID and same start time, and not a zombie (it has exited). */
export function stillRunning(family: readonly ProcessIdentity[]): ProcessIdentity[] {
  return family.filter((p) => {
    const now = readStat(p.pid);
    return now !== null && now.startTicks === p.startTicks && now.state !== "Z";
  });
}
