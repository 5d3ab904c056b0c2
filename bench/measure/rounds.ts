import os from "node:os";
import type { Plan } from "../config.ts";
import { p50 } from "../report/values.ts";
import { levelKey, payloadKey, type Results, seqKey } from "../results.ts";
import { SERVERS, type ServerName, type Session, type Target, type TargetName } from "../targets/target.ts";
import { callOf, uniqueMessage } from "./calls.ts";
import {
  concurrent,
  memoryPerSession,
  payload,
  type RunResult,
  type SetupResult,
  sequential,
  setup,
} from "./scenarios.ts";

type Pools = Map<TargetName, Record<ServerName, Session[]>>;

/** A distinct principal per session: on the bridge, per-user servers (memory) then get a process each. */
const principalOf = (server: ServerName) => (i: number) => `bench-${server}-${i}`;

/**
 * Opens each target's sessions (measuring memory per session on the way), then runs the rounds: in each
 * round every scenario runs on every target before the next scenario, in the round's target order
 * (A B C, then C B A, …), so drift of a shared machine lands on all targets alike.
 */
export async function runRounds(
  plan: Plan,
  targets: readonly Target[],
  results: Results,
  log: (line: string) => void,
): Promise<void> {
  const pools: Pools = new Map();
  const maxSessions = Math.max(...plan.levels.map((l) => l.sessions));
  try {
    for (const target of targets) {
      log(`${target.name}: opening sessions, measuring memory per session`);
      const pool: Record<ServerName, Session[]> = { everything: [], memory: [] };
      pools.set(target.name, pool);
      const memory = new Map<ServerName, Awaited<ReturnType<typeof memoryPerSession>>>();
      for (const server of SERVERS) {
        const first = await target.connect(server, principalOf(server)(0));
        pool[server].push(first);
        await callOf(server)(target, first, uniqueMessage("first"));
        memory.set(
          server,
          await memoryPerSession(
            target,
            server,
            pool[server],
            plan.memorySessions[server],
            principalOf(server),
            plan.memorySettleMs,
          ),
        );
      }
      while (pool.everything.length < maxSessions) {
        pool.everything.push(await target.connect("everything", principalOf("everything")(pool.everything.length)));
      }
      results.memory.set(target.name, memory);
    }

    for (let r = 0; r < plan.rounds; r++) {
      const order = r % 2 === 0 ? [...targets] : [...targets].reverse();
      results.loadPerRound.push(os.loadavg()[0] ?? Number.NaN);
      log(`round ${r + 1}/${plan.rounds}: ${order.map((t) => t.name).join(" → ")}`);
      const round = new Map<string, Map<TargetName, RunResult>>();
      const put = (key: string, target: Target, run: RunResult) => {
        const byTarget = round.get(key) ?? new Map<TargetName, RunResult>();
        byTarget.set(target.name, run);
        round.set(key, byTarget);
        const bad = run.wrong + run.errors > 0 ? ` (${run.wrong} wrong, ${run.errors} failed)` : "";
        log(`  ${key} ${target.name}: p50 ${p50(run).toFixed(2)} ms, ${run.calls} calls${bad}`);
      };
      const poolOf = (t: Target) => pools.get(t.name) as Record<ServerName, Session[]>;

      for (const server of SERVERS) {
        for (const t of order) {
          const session = poolOf(t)[server][0] as Session;
          put(seqKey(server), t, await sequential(t, session, server, plan.sequentialCalls[server], plan.warmupCalls));
        }
      }
      for (const level of plan.levels) {
        for (const t of order) {
          const sessions = poolOf(t).everything.slice(0, level.sessions);
          put(levelKey(level), t, await concurrent(t, sessions, level.inFlight, plan.levelMs, plan.levelWarmupMs));
        }
      }
      for (const t of order) {
        // A fresh session for payloads: a refused large body (a peer's limit) must not break the pooled ones.
        const session = await t.connect("everything", "bench-payload");
        try {
          for (const p of plan.payloads) put(payloadKey(p.bytes), t, await payload(t, session, p.bytes, p.calls));
        } finally {
          await session.close().catch(() => {});
        }
      }
      results.rounds.push(round);

      const setups = new Map<ServerName, Map<TargetName, SetupResult[]>>();
      for (const server of SERVERS) {
        const byTarget = new Map<TargetName, SetupResult[]>();
        for (const t of order) {
          const trials: SetupResult[] = [];
          for (let i = 0; i < plan.setupTrials; i++) {
            trials.push(
              await setup(t, server, principalOf(server)(0)).catch(() => ({
                connectMs: Number.NaN,
                listMs: Number.NaN,
                firstCallMs: Number.NaN,
                totalMs: Number.NaN,
                ok: false,
              })),
            );
          }
          byTarget.set(t.name, trials);
          log(`  setup:${server} ${t.name}: ${trials.map((s) => s.totalMs.toFixed(1)).join(", ")} ms`);
        }
        setups.set(server, byTarget);
      }
      results.setups.push(setups);
    }
  } finally {
    for (const pool of pools.values()) {
      await Promise.all([...pool.everything, ...pool.memory].map((s) => s.close().catch(() => {})));
    }
  }
}
