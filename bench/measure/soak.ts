import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { LOCAL_RUNTIME_DEFAULTS, localStackEnv } from "../../scripts/lib/local-stack.ts";
import type { SoakPlan } from "../config.ts";
import type { GatewayTarget } from "../targets/gateway.ts";
import { echo, uniqueMessage } from "./calls.ts";
import { type ProcessCpu, treeCpuByProcess, treeRssByProcess } from "./proc.ts";
import { roleOf } from "./roles.ts";
import { percentile } from "./stats.ts";

/**
 * The memory soak: many sequential echo calls on one session of a fresh local stack, reading the RSS of
 * each of the stack's processes after every batch, to see whether the gateway's memory levels off.
 */

export interface SoakReading {
  /** Calls made so far, after the warm-up (0: the reading before the first batch). */
  readonly calls: number;
  /** RSS in KiB per role (bench/measure/roles.ts), summed over that role's processes. */
  readonly rssKiB: Record<string, number>;
  /** The pids of each role: a role whose pids change between readings had a process restart. */
  readonly pids: Record<string, number[]>;
  /** Bytes under the stack's wrangler state directory (local D1, KV, Durable Objects, trace store). */
  readonly stateBytes: number;
}

export interface SoakBatch {
  readonly calls: number;
  /** Calls that failed or answered something else than their own message, by kind. */
  readonly failures: Record<string, number>;
  readonly p50Ms: number;
  readonly elapsedMs: number;
  /** CPU (utime + stime) of the stack's processes over the batch. */
  readonly cpuMs: number;
}

export interface SoakResult {
  readonly plan: SoakPlan;
  readonly readings: SoakReading[];
  readonly batches: SoakBatch[];
  /** The local runtime settings the stack ran with (scripts/lib/local-stack.ts; the environment may override). */
  readonly settings: Record<string, string>;
  readonly durationMs: number;
}

/** The local runtime settings as the stack's wrangler sees them (`""` when unset). */
export function effectiveRuntimeSettings(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const effective = localStackEnv(env);
  return Object.fromEntries(Object.keys(LOCAL_RUNTIME_DEFAULTS).map((k) => [k, effective[k] ?? ""]));
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0; // not created yet, or removed meanwhile
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await directoryBytes(full);
    else if (entry.isFile())
      total += await stat(full).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

/** CPU used between two samples by the processes alive at the second (a restarted one counts from its start). */
function cpuSince(before: readonly ProcessCpu[], after: readonly ProcessCpu[]): number {
  const start = new Map(before.map((p) => [p.pid, p.cpuMs]));
  return after.reduce((acc, p) => acc + p.cpuMs - (start.get(p.pid) ?? 0), 0);
}

async function reading(target: GatewayTarget, calls: number, stateDir: string): Promise<SoakReading> {
  const port = new URL(target.stack.url).port;
  const rssKiB: Record<string, number> = {};
  const pids: Record<string, number[]> = {};
  for (const p of treeRssByProcess(target.servingRoots())) {
    const role = roleOf(p.command, port);
    rssKiB[role] = (rssKiB[role] ?? 0) + p.rssKiB;
    pids[role] = [...(pids[role] ?? []), p.pid].sort((a, b) => a - b);
  }
  return { calls, rssKiB, pids, stateBytes: await directoryBytes(stateDir) };
}

/**
 * Runs the soak on a gateway target nobody else calls: one session, `warmupCalls`, a reading, then
 * `batches` × `callsPerBatch` sequential echoes (each answer checked), a reading after each batch.
 * `stateDir` is the stack's wrangler state directory (its size is read with the memory).
 */
export async function runSoak(
  target: GatewayTarget,
  plan: SoakPlan,
  stateDir: string,
  log: (line: string) => void,
): Promise<SoakResult> {
  const t0 = performance.now();
  const settle = () => new Promise((r) => setTimeout(r, plan.settleMs));
  const session = await target.connect("everything", "bench-soak");
  const readings: SoakReading[] = [];
  const batches: SoakBatch[] = [];
  try {
    for (let i = 0; i < plan.warmupCalls; i++) await echo(target, session, uniqueMessage("soak-warm"));
    await settle();
    readings.push(await reading(target, 0, stateDir));
    for (let b = 1; b <= plan.batches; b++) {
      const failures: Record<string, number> = {};
      const latencies: number[] = [];
      const cpuBefore = treeCpuByProcess(target.servingRoots());
      const started = performance.now();
      for (let i = 0; i < plan.callsPerBatch; i++) {
        const t = performance.now();
        const outcome = await echo(target, session, uniqueMessage(`soak${b}.${i}`));
        latencies.push(performance.now() - t);
        if (outcome !== "ok") failures[outcome] = (failures[outcome] ?? 0) + 1;
      }
      const elapsedMs = performance.now() - started;
      const cpuMs = cpuSince(cpuBefore, treeCpuByProcess(target.servingRoots()));
      batches.push({ calls: plan.callsPerBatch, failures, p50Ms: percentile(latencies, 50), elapsedMs, cpuMs });
      await settle();
      const r = await reading(target, b * plan.callsPerBatch, stateDir);
      readings.push(r);
      const total = Object.values(r.rssKiB).reduce((a, v) => a + v, 0);
      log(`  soak: ${r.calls} calls, stack RSS ${(total / 1024).toFixed(0)} MiB`);
    }
  } finally {
    await session.close().catch(() => {});
  }
  return {
    plan,
    readings,
    batches,
    settings: effectiveRuntimeSettings(),
    durationMs: performance.now() - t0,
  };
}
