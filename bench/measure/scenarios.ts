import type { ServerName, Session, Target } from "../targets/target.ts";
import { type CallOutcome, callOf, echo, uniqueMessage } from "./calls.ts";
import { type TreeMemory, treeCpuMs, treeMemory } from "./proc.ts";

/** What one measured run produced; latencies in ms, CPU is the serving tree's (utime + stime). */
export interface RunResult {
  readonly calls: number;
  readonly wrong: number;
  readonly errors: number;
  /** Failed calls by kind (`HTTP 503`, `JSON-RPC -32001`, …). */
  readonly errorKinds: Record<string, number>;
  /** Latencies of answered calls (right or wrong); a refusal's latency says nothing about the path. */
  readonly latencies: number[];
  readonly elapsedMs: number;
  readonly cpuMs: number;
}

class Recorder {
  calls = 0;
  wrong = 0;
  errors = 0;
  readonly errorKinds: Record<string, number> = {};
  readonly latencies: number[] = [];
  async time(run: () => Promise<CallOutcome>): Promise<void> {
    const started = performance.now();
    const outcome = await run();
    this.calls += 1;
    if (outcome.startsWith("error:")) {
      this.errors += 1;
      const kind = outcome.slice("error:".length);
      this.errorKinds[kind] = (this.errorKinds[kind] ?? 0) + 1;
      return;
    }
    this.latencies.push(performance.now() - started);
    if (outcome === "wrong") this.wrong += 1;
  }
}

async function measured(target: Target, body: (rec: Recorder) => Promise<void>): Promise<RunResult> {
  const rec = new Recorder();
  const roots = target.servingRoots();
  const cpuBefore = treeCpuMs(roots);
  const started = performance.now();
  await body(rec);
  const elapsedMs = performance.now() - started;
  return {
    calls: rec.calls,
    wrong: rec.wrong,
    errors: rec.errors,
    errorKinds: rec.errorKinds,
    latencies: rec.latencies,
    elapsedMs,
    cpuMs: treeCpuMs(roots) - cpuBefore,
  };
}

/** One call at a time on one session, after `warmup` unmeasured calls. */
export async function sequential(
  target: Target,
  session: Session,
  server: ServerName,
  calls: number,
  warmup: number,
): Promise<RunResult> {
  const call = callOf(server);
  for (let i = 0; i < warmup; i++) await call(target, session, uniqueMessage("warm"));
  return measured(target, async (rec) => {
    for (let i = 0; i < calls; i++) await rec.time(() => call(target, session, uniqueMessage(`seq${i}`)));
  });
}

/**
 * `inFlight` closed loops per session, each sending its next echo as soon as the last one answered,
 * until `durationMs` has passed (calls started before then finish and count). Every answer is checked.
 */
export async function concurrent(
  target: Target,
  sessions: readonly Session[],
  inFlight: number,
  durationMs: number,
  warmupMs: number,
): Promise<RunResult> {
  const loops = async (ms: number, rec: Recorder | null) => {
    const deadline = performance.now() + ms;
    await Promise.all(
      sessions.flatMap((session, s) =>
        Array.from({ length: inFlight }, async (_, w) => {
          for (let i = 0; performance.now() < deadline; i++) {
            const call = () => echo(target, session, uniqueMessage(`s${s}w${w}c${i}`));
            if (rec) await rec.time(call);
            else await call();
          }
        }),
      ),
    );
  };
  await loops(warmupMs, null);
  return measured(target, (rec) => loops(durationMs, rec));
}

/** Sequential echoes of a `bytes`-long message (the answer carries it back). */
export async function payload(target: Target, session: Session, bytes: number, calls: number): Promise<RunResult> {
  await echo(target, session, uniqueMessage("warm", bytes));
  return measured(target, async (rec) => {
    for (let i = 0; i < calls; i++) await rec.time(() => echo(target, session, uniqueMessage(`p${i}`, bytes)));
  });
}

export interface SetupResult {
  readonly connectMs: number;
  readonly listMs: number;
  readonly firstCallMs: number;
  readonly totalMs: number;
  readonly ok: boolean;
}

/** A new session from nothing: connect (initialize + initialized) → tools/list → first call. */
export async function setup(target: Target, server: ServerName, principal: string): Promise<SetupResult> {
  const t0 = performance.now();
  const session = await target.connect(server, principal);
  const t1 = performance.now();
  try {
    await session.client.listTools();
    const t2 = performance.now();
    const outcome = await callOf(server)(target, session, uniqueMessage("setup"));
    const t3 = performance.now();
    return { connectMs: t1 - t0, listMs: t2 - t1, firstCallMs: t3 - t2, totalMs: t3 - t0, ok: outcome === "ok" };
  } finally {
    await session.close();
  }
}

export interface MemoryResult {
  readonly base: TreeMemory;
  readonly loaded: TreeMemory;
  readonly added: number;
  readonly perSessionPssKiB: number;
  readonly perSessionRssKiB: number;
}

/**
 * Memory of the serving tree per session: measured with `base` sessions open (each has made a call),
 * then with `added` more; the difference divided by `added`. Sessions stay open for the caller.
 */
export async function memoryPerSession(
  target: Target,
  server: ServerName,
  open: Session[],
  added: number,
  principalOf: (i: number) => string,
  settleMs: number,
): Promise<MemoryResult> {
  const settle = () => new Promise((r) => setTimeout(r, settleMs));
  await settle();
  const base = treeMemory(target.servingRoots());
  const call = callOf(server);
  const start = open.length;
  for (let i = 0; i < added; i++) {
    const session = await target.connect(server, principalOf(start + i));
    open.push(session);
    await call(target, session, uniqueMessage("mem"));
  }
  await settle();
  const loaded = treeMemory(target.servingRoots());
  return {
    base,
    loaded,
    added,
    perSessionPssKiB: (loaded.pssKiB - base.pssKiB) / added,
    perSessionRssKiB: (loaded.rssKiB - base.rssKiB) / added,
  };
}
