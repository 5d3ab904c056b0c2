import { describe, expect, it } from "vitest";
import {
  callSteps,
  DESIGNS,
  INPUT_SOURCES,
  INPUTS,
  type ModelInputs,
  PEOPLE,
  type Person,
  pathMs,
  report,
  rttMs,
} from "../../bench/latency-model.ts";

/**
 * bench/latency-model.ts is a model: these tests check its arithmetic on round inputs, not what it
 * concludes about the real network.
 */
const round: ModelInputs = {
  fiberKmPerMs: 100,
  routeInflation: 2,
  kvHotReadMs: 3,
  d1ReadExecMs: 0.5,
  d1WriteExecMs: 0.25,
  durableWriteMs: 4,
  doOverheadMs: 1,
  rateLimited: false,
  workerCpuMs: { before: 2, afterMiss: 1.5, afterHit: 1 },
};
// Round trips: primary 2 × 1000 × 2 / 100 = 40 ms; objects 2 × 25 × 2 / 100 = 1 ms; replica 2 ms.
const person: Person = { name: "test", primaryKm: 1_000, objectsKm: 25, replicaKm: 50 };

describe("latency model arithmetic", () => {
  it("a round trip is twice the distance, stretched by the route inflation, over the fibre speed", () => {
    expect(rttMs(round, 1_000)).toBe(40);
    expect(rttMs(round, 0)).toBe(0);
    expect(rttMs({ ...round, routeInflation: 1 }, 1_000)).toBe(20);
  });

  it("before: CPU + KV + grants at the primary + container object + audit write at the primary, in series", () => {
    const steps = callSteps(round, person, "before");
    expect(steps.every((s) => s.onPath)).toBe(true);
    expect(steps.map((s) => s.ms)).toEqual([2, 3, 40 + 0.5, 1 + 1, 40 + 0.25 + 4]);
    expect(pathMs(steps)).toBeCloseTo(2 + 3 + 40.5 + 2 + 44.25, 10);
  });

  it("after, grants read: the audit write is the ledger's (near object + durable write); the shipment is off the path", () => {
    const steps = callSteps(round, person, "after: grants read (cache miss)");
    const shipment = steps.filter((s) => !s.onPath);
    expect(shipment.map((s) => s.ms)).toEqual([40 + 0.25 + 4]);
    expect(steps.filter((s) => s.onPath).map((s) => s.ms)).toEqual([1.5, 3, 40.5, 2, 1 + 1 + 4]);
    expect(pathMs(steps)).toBeCloseTo(1.5 + 3 + 40.5 + 2 + 6, 10);
  });

  it("after, token and grants reused: no KV read and no D1 round trip on the path, and the reused-path CPU", () => {
    const steps = callSteps(round, person, "after: token and grants reused (within 1 s)");
    expect(pathMs(steps)).toBeCloseTo(1 + 0 + 0 + 2 + 6, 10);
    const miss = pathMs(callSteps(round, person, "after: grants read (cache miss)"));
    expect(miss - pathMs(steps)).toBeCloseTo(0.5 + 3 + 40.5, 10);
  });

  it("not built, replica proven fresh: the grants step is the replica's round trip instead of the primary's", () => {
    const steps = callSteps(round, person, "not built: replica read proven fresh");
    expect(steps.filter((s) => s.onPath).map((s) => s.ms)).toEqual([1.5, 3, 2 + 0.5, 2, 6]);
    expect(pathMs(steps)).toBeCloseTo(1.5 + 3 + 2.5 + 2 + 6, 10);
  });

  it("a rate-limited caller's call adds one round trip to its ledger after, none before", () => {
    const limited = { ...round, rateLimited: true };
    for (const design of DESIGNS) {
      const extra = pathMs(callSteps(limited, person, design)) - pathMs(callSteps(round, person, design));
      expect(extra, design).toBeCloseTo(design === "before" ? 0 : 1 + 1, 10);
    }
  });

  it("the path is the sum of the steps on it, whatever their order", () => {
    const steps = callSteps(round, person, "before");
    expect(pathMs([...steps].reverse())).toBeCloseTo(pathMs(steps), 10);
    expect(pathMs([])).toBe(0);
  });

  it("every input and every step names where its figure comes from", () => {
    for (const key of Object.keys(INPUTS) as (keyof ModelInputs)[])
      expect(INPUT_SOURCES[key].note.length).toBeGreaterThan(0);
    for (const p of PEOPLE) {
      for (const design of DESIGNS) {
        for (const step of callSteps(INPUTS, p, design)) {
          if (step.ms > 0) expect(step.sources.length, `${p.name}: ${step.step}`).toBeGreaterThan(0);
        }
      }
    }
  });

  it("the report says it is a model and has a total for every person and design", () => {
    const text = report(round);
    expect(text).toContain("This is a model, not a measurement.");
    for (const p of PEOPLE) expect(text).toContain(`| ${p.name} |`);
  });
});
