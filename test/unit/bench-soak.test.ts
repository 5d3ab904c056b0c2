import { describe, expect, it } from "vitest";
import { SOAK_PLATEAU_MIB_PER_1000_CALLS } from "../../bench/config.ts";
import { ROLES } from "../../bench/measure/roles.ts";
import type { SoakResult } from "../../bench/measure/soak.ts";
import { fittedSlope, judgeSoak, soakGoalRow } from "../../bench/report/soak.ts";

const MiB = 1024;

/** A soak whose processes have these RSS values (MiB) after the warm-up and each batch of 1,000 calls. */
function soak(rss: Record<string, number[]>, options: { pids?: Record<string, number[][]>; failed?: number } = {}) {
  const batches = (Object.values(rss)[0]?.length ?? 1) - 1;
  const result: SoakResult = {
    plan: { batches, callsPerBatch: 1_000, warmupCalls: 50, settleMs: 1_000 },
    readings: Array.from({ length: batches + 1 }, (_, i) => ({
      calls: i * 1_000,
      rssKiB: Object.fromEntries(Object.entries(rss).map(([role, values]) => [role, (values[i] ?? 0) * MiB])),
      pids: Object.fromEntries(Object.keys(rss).map((role, r) => [role, options.pids?.[role]?.[i] ?? [100 + r]])),
      stateBytes: 1e6 * (1 + i),
    })),
    batches: Array.from({ length: batches }, (_, i) => ({
      calls: 1_000,
      failures: Object.fromEntries(i === 0 && options.failed ? [["error:HTTP 503", options.failed]] : []),
      p50Ms: 10,
      elapsedMs: 10_000,
      cpuMs: 10_000,
    })),
    settings: { X_LOCAL_OBSERVABILITY: "false", MINIFLARE_WORKERD_V8_FLAGS: "--gc-global" },
    durationMs: 60_000,
  };
  return result;
}

const levelled = {
  [ROLES.runtime]: [159, 188, 196, 197, 197, 198],
  [ROLES.proxy]: [97, 113, 115, 126, 125, 126],
  [ROLES.bridge]: [104, 99, 99, 103, 103, 104],
  "everything (stdio server)": [74, 81, 70, 75, 76, 76],
};

describe("the memory soak's goal (bench/report/soak.ts)", () => {
  it("fits a least-squares slope", () => {
    expect(
      fittedSlope([
        [0, 1],
        [1, 3],
        [2, 5],
      ]),
    ).toBeCloseTo(2);
    expect(fittedSlope([[0, 1]])).toBeNaN();
  });

  it("is met when every judged process grows less than the limit from the 2nd thousand on", () => {
    const verdict = judgeSoak(soak(levelled));
    expect(verdict.notJudged).toBeNull();
    expect(verdict.from).toBe(2_000);
    expect(verdict.to).toBe(5_000);
    expect(verdict.slopes.get(ROLES.runtime)).toBeCloseTo(0.6, 1);
    expect(verdict.stateSlopeMB).toBeCloseTo(1);
    expect(verdict.met).toBe(true);
    expect(soakGoalRow(soak(levelled), null)?.[2]).toBe("yes");
  });

  it("is missed when one keeps growing, however flat the first thousand looks", () => {
    const growing = { ...levelled, [ROLES.proxy]: [98, 152, 197, 242, 286, 328] };
    const row = soakGoalRow(soak(growing), null);
    expect(judgeSoak(soak(growing)).met).toBe(false);
    expect(row?.[2]).toMatch(/^no \(\+43\.\d MiB per 1,000 calls, 5\.\d× the limit\)$/);
    expect(SOAK_PLATEAU_MIB_PER_1000_CALLS).toBe(8);
  });

  it("ignores processes that are not on a call's path (the stdio server, dev tooling)", () => {
    const serverGrows = { ...levelled, "everything (stdio server)": [74, 100, 150, 200, 250, 300] };
    expect(judgeSoak(soak(serverGrows)).met).toBe(true);
  });

  it("is not met when calls failed, and not judged when a judged process restarted", () => {
    expect(soakGoalRow(soak(levelled, { failed: 3 }), null)?.[2]).toBe("no (calls failed)");
    const restarted = soak(levelled, { pids: { [ROLES.runtime]: [[1], [1], [1], [2], [2], [2]] } });
    const verdict = judgeSoak(restarted);
    expect(verdict.restarted).toEqual([ROLES.runtime]);
    expect(verdict.met).toBe(false);
    expect(soakGoalRow(restarted, null)?.[2]).toMatch(/^– \(not judged: the Worker's workerd restarted/);
  });

  it("is not judged from batches too small for a slope per 1,000 calls (--quick)", () => {
    const quick = soak(levelled);
    const small = { ...quick, plan: { ...quick.plan, callsPerBatch: 100 } };
    expect(judgeSoak(small).notJudged).toMatch(/too small/);
    expect(soakGoalRow(null, "port in use")?.[1]).toBe("the soak did not run: port in use");
    expect(soakGoalRow(null, null)).toBeNull();
  });
});
