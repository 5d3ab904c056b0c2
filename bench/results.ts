import type { Level, Plan } from "./config.ts";
import type { BillablePhase } from "./measure/billable.ts";
import type { MemoryResult, RunResult, SetupResult } from "./measure/scenarios.ts";
import type { SoakResult } from "./measure/soak.ts";
import type { ServerName, TargetName } from "./targets/target.ts";

/** Everything one bench run measured, as the report reads it. */

export type Metric = "seq" | "level" | "payload";

export interface Results {
  readonly plan: Plan;
  readonly machine: Machine;
  readonly versions: Record<string, string>;
  readonly targets: readonly TargetName[];
  /** Per round: run key → target → result. Keys: `seq:<server>`, `level:<s>x<f>`, `payload:<bytes>`. */
  readonly rounds: Map<string, Map<TargetName, RunResult>>[];
  /** Per round: server → target → setup trials. */
  readonly setups: Map<ServerName, Map<TargetName, SetupResult[]>>[];
  readonly memory: Map<TargetName, Map<ServerName, MemoryResult>>;
  billable: BillablePhase[] | null;
  billableError: string | null;
  /** The memory soak (its own fresh stack), when it ran. */
  soak: SoakResult | null;
  soakError: string | null;
  readonly loadPerRound: number[];
  durationMs: number;
}

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly loadAtStart: readonly number[];
  loadAtEnd: readonly number[];
}

export const seqKey = (server: ServerName) => `seq:${server}`;
export const levelKey = (level: Level) => `level:${level.sessions}x${level.inFlight}`;
export const payloadKey = (bytes: number) => `payload:${bytes}`;
