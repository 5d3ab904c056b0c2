import type { ServerName } from "./targets/target.ts";

/**
 * Ports: the bench owns 18600–18699 on 127.0.0.1 (other work on this machine uses other ranges).
 * Each target gets fixed ports so a leftover process from a crashed run is found, not silently dodged.
 */
export const PORTS = {
  bridge: 18600,
  supergateway: { everything: 18610, memory: 18611 },
  mcpProxy: { everything: 18620, memory: 18621 },
  gateway: { worker: 18630, bridge: 18631, inspector: 18632 },
  /** The same local product, reached by the MCP 2026-07-28 client (bench/targets/gateway-modern.ts). */
  gatewayModern: { worker: 18670, bridge: 18671, inspector: 18672 },
  /** The second local stack, with the metered Worker entry, for the cost count. */
  metered: { worker: 18640, bridge: 18641, inspector: 18642 },
  /** bench/profile/worker.ts */
  profile: { worker: 18650, bridge: 18651, inspector: 18652 },
  /** The memory soak's own local stack (fresh, so earlier scenarios' calls do not count). */
  soak: { worker: 18660, bridge: 18661, inspector: 18662 },
} as const;

export interface Level {
  readonly sessions: number;
  readonly inFlight: number;
}

export interface Plan {
  readonly mode: "full" | "quick";
  readonly rounds: number;
  readonly sequentialCalls: Record<ServerName, number>;
  readonly warmupCalls: number;
  readonly levels: readonly Level[];
  readonly levelMs: number;
  readonly levelWarmupMs: number;
  /** Payload sizes (bytes) and calls per size. */
  readonly payloads: readonly { readonly bytes: number; readonly calls: number }[];
  readonly setupTrials: number;
  /** Sessions added on top of the first for the memory-per-session measurement, per server. */
  readonly memorySessions: Record<ServerName, number>;
  /** Wait before each memory reading: children finish starting, timers fire (not a GC guarantee). */
  readonly memorySettleMs: number;
  /** Calls per phase of the gateway cost count. */
  readonly billableCalls: number;
  readonly soak: SoakPlan;
}

/** The memory soak: sequential echo calls on one gateway session, the stack's memory read after each batch. */
export interface SoakPlan {
  readonly batches: number;
  readonly callsPerBatch: number;
  readonly warmupCalls: number;
  /** Wait before each reading (the last call's audit write lands, timers fire). */
  readonly settleMs: number;
}

/**
 * The soak's goal: from the reading after the second batch to the last, no process of the gateway
 * (both workerd processes, the bridge) grows by more than this per 1,000 calls (a fitted slope; 1 MiB
 * per 1,000 calls is about 1 KiB per call). Before the local runtime settings (scripts/lib/local-stack.ts)
 * the Worker's workerd grew by 28–38 and wrangler's proxy by ~44; with them, by 0.6–5 (bench/RESULTS.md).
 */
export const SOAK_PLATEAU_MIB_PER_1000_CALLS = 8;

const KiB = 1024;
const MiB = 1024 * KiB;

export const FULL: Plan = {
  mode: "full",
  rounds: 5,
  sequentialCalls: { everything: 400, memory: 200 },
  warmupCalls: 50,
  levels: [
    { sessions: 1, inFlight: 16 },
    { sessions: 8, inFlight: 16 },
    { sessions: 8, inFlight: 64 },
    { sessions: 32, inFlight: 32 },
  ],
  levelMs: 3_000,
  levelWarmupMs: 500,
  payloads: [
    { bytes: KiB, calls: 50 },
    { bytes: 64 * KiB, calls: 30 },
    { bytes: MiB, calls: 8 },
  ],
  setupTrials: 3,
  memorySessions: { everything: 31, memory: 7 },
  memorySettleMs: 1_000,
  billableCalls: 200,
  soak: { batches: 5, callsPerBatch: 1_000, warmupCalls: 50, settleMs: 1_000 },
};

/** A smoke check (under a minute): every target, scenario and check runs once, briefly. */
export const QUICK: Plan = {
  mode: "quick",
  rounds: 1,
  sequentialCalls: { everything: 40, memory: 20 },
  warmupCalls: 5,
  levels: [
    { sessions: 1, inFlight: 16 },
    { sessions: 4, inFlight: 16 },
  ],
  levelMs: 300,
  levelWarmupMs: 50,
  payloads: [
    { bytes: KiB, calls: 3 },
    { bytes: 64 * KiB, calls: 2 },
    { bytes: MiB, calls: 1 },
  ],
  setupTrials: 1,
  memorySessions: { everything: 3, memory: 2 },
  memorySettleMs: 100,
  billableCalls: 16,
  soak: { batches: 3, callsPerBatch: 100, warmupCalls: 5, settleMs: 200 },
};
