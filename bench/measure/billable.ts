import { z } from "zod";
import type { GatewayTarget } from "../targets/gateway.ts";
import type { Session } from "../targets/target.ts";
import { echo, readGraph, uniqueMessage } from "./calls.ts";
import { type ProcessCpu, treeCpuByProcess } from "./proc.ts";
import { roleOf } from "./roles.ts";

/**
 * Counts what costs money on Cloudflare per gateway operation, on the local stack started with the metered
 * Worker entry (test/workers/metering/metered-worker.ts): the product Worker, unchanged, with counters
 * around its D1, KV and Durable Object bindings, the session object's storage, and outbound fetches.
 */

const Tallies = z.record(z.string(), z.object({ count: z.number(), ms: z.number() }));
export type Tallies = z.infer<typeof Tallies>;

/** Work a response does not wait for (the audit write after a streamed answer, a session's teardown) is done by then. */
const SETTLE_MS = 500;

/** The path the metered entry answers (GET: tallies; POST: reset). */
const METER_PATH = "/__meter";

export interface BillablePhase {
  readonly phase: string;
  /** How many operations the tallies cover (they are divided by this). */
  readonly per: number;
  readonly tallies: Tallies;
  /** CPU ms per operation of each process of the local stack during the phase, by role. */
  readonly cpuByRole: Record<string, number>;
}

function cpuDelta(before: readonly ProcessCpu[], after: readonly ProcessCpu[], per: number, port: string) {
  const start = new Map(before.map((p) => [p.pid, p.cpuMs]));
  const byRole: Record<string, number> = {};
  for (const p of after) {
    const role = roleOf(p.command, port);
    byRole[role] = (byRole[role] ?? 0) + (p.cpuMs - (start.get(p.pid) ?? 0)) / per;
  }
  return byRole;
}

async function meter(target: GatewayTarget, method: "GET" | "POST"): Promise<Tallies> {
  const res = await fetch(`${target.stack.url}${METER_PATH}`, { method });
  if (!res.ok) throw new Error(`${METER_PATH} answered ${res.status}: is the metered Worker entry running?`);
  return Tallies.parse(await res.json());
}

/** The sequential echo phases: the per-call cost of each path (bench/report/goals.ts reads them by name). */
export const ECHO_PHASE = "tools/call everything__echo";
export const MODERN_ECHO_PHASE = "modern: tools/call everything__echo";

/** Runs `run` as one counted phase of `target`'s metered stack, appending it to `phases`. */
function phaseOf(target: GatewayTarget, phases: BillablePhase[]) {
  return async <T>(name: string, per: number, run: () => Promise<T>): Promise<T> => {
    await meter(target, "POST");
    const cpuBefore = treeCpuByProcess(target.servingRoots());
    const value = await run();
    const cpuAfter = treeCpuByProcess(target.servingRoots());
    // Responses stream: the audit write of the last call lands just after its answer; wait for it.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const tallies = await meter(target, "GET");
    const port = new URL(target.stack.url).port;
    phases.push({ phase: name, per, tallies, cpuByRole: cpuDelta(cpuBefore, cpuAfter, per, port) });
    return value;
  };
}

export async function countBillable(target: GatewayTarget, calls: number): Promise<BillablePhase[]> {
  const phases: BillablePhase[] = [];
  const phase = phaseOf(target, phases);
  const session: Session = await phase("initialize (new session)", 1, () => target.connect("everything", ""));
  try {
    await phase("tools/list (opens the backend sessions)", 1, () => session.client.listTools());
    await phase(ECHO_PHASE, calls, async () => {
      for (let i = 0; i < calls; i++) await echo(target, session, uniqueMessage(`b${i}`));
    });
    await phase("tools/call memory__read_graph", calls, async () => {
      for (let i = 0; i < calls; i++) await readGraph(target, session);
    });
    const others = await Promise.all(Array.from({ length: 4 }, () => target.connect("everything", "")));
    // Each new session opens its own backend sessions on first use; that is setup, not the calls counted here.
    await Promise.all(others.map((s) => echo(target, s, uniqueMessage("open"))));
    const each = Math.ceil(calls / 16);
    await phase("tools/call everything__echo, 4 sessions × 4 in flight", 16 * each, async () => {
      await Promise.all(
        others.flatMap((s, i) =>
          Array.from({ length: 4 }, async (_, w) => {
            for (let c = 0; c < each; c++) await echo(target, s, uniqueMessage(`c${i}.${w}.${c}`));
          }),
        ),
      );
    });
    await Promise.all(others.map((s) => s.close()));
    // Ending a session finishes after its DELETE is answered (backend sessions, storage): let that land
    // before counting the next phase.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
  } finally {
    await phase("DELETE (end the session)", 1, () => session.close());
  }
  return phases;
}

/**
 * The same calls from the 2026-07-28 client (`target`: modern clients of the same metered stack,
 * bench/targets/gateway-modern.ts). Stateless: no session to open or end, each request stands alone.
 */
export async function countModernBillable(target: GatewayTarget, calls: number): Promise<BillablePhase[]> {
  const phases: BillablePhase[] = [];
  const phase = phaseOf(target, phases);
  const client: Session = await phase("modern: connect (server/discover)", 1, () => target.connect("everything", ""));
  try {
    await phase("modern: tools/list", 1, () => client.client.listTools());
    await phase(MODERN_ECHO_PHASE, calls, async () => {
      for (let i = 0; i < calls; i++) await echo(target, client, uniqueMessage(`m${i}`));
    });
    await phase("modern: tools/call memory__read_graph", calls, async () => {
      for (let i = 0; i < calls; i++) await readGraph(target, client);
    });
    const others = await Promise.all(Array.from({ length: 4 }, () => target.connect("everything", "")));
    const each = Math.ceil(calls / 16);
    await phase("modern: tools/call everything__echo, 4 clients × 4 in flight", 16 * each, async () => {
      await Promise.all(
        others.flatMap((s, i) =>
          Array.from({ length: 4 }, async (_, w) => {
            for (let c = 0; c < each; c++) await echo(target, s, uniqueMessage(`mc${i}.${w}.${c}`));
          }),
        ),
      );
    });
    await Promise.all(others.map((s) => s.close()));
  } finally {
    await client.close();
  }
  return phases;
}
