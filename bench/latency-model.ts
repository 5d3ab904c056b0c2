// Usage: node bench/latency-model.ts   (npm run bench:latency; prints Markdown)
// A MODEL, not a measurement: what one allowed tool call on the direct path would take deployed, step by
// step, for a person near the D1 primary's region and for people on other continents, before and after
// issue 18. Each step is the Worker's own CPU measured here (bench/profile/worker.ts) plus network and
// storage figures taken from published sources or, where none was found, an assumption stated as one.
// Nothing here was measured on Cloudflare; this machine cannot reach it. The container's own time (the
// stdio server's work) is the same in every row and left out, as is the person's own first mile to
// the nearest Cloudflare location.
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** Where a figure comes from: a published source, or our own assumption (said so). */
export interface Source {
  readonly id: string;
  readonly what: string;
  readonly url: string | null;
}

export const SOURCES = {
  fiber: {
    id: "fiber",
    what: "Light in optical fibre covers ~204 km per ms (refractive index ~1.47); measured Internet routes run 1.3–2.1× the line-of-sight distance (Bozkurt et al., Dissecting Latency in the Internet's Fiber Infrastructure, 2018).",
    url: "https://arxiv.org/abs/1811.10737",
  },
  d1Location: {
    id: "d1-location",
    what: "A D1 database's primary lives in one location, chosen near where it was created or by a location hint (wnam, enam, weur, eeur, apac, oc).",
    url: "https://developers.cloudflare.com/d1/configuration/data-location/",
  },
  d1Replicas: {
    id: "d1-replicas",
    what: "Without the Sessions API every query goes to the primary; a read replica 'may be arbitrarily out of date' (no published lag bound); replicas exist in each D1 region.",
    url: "https://developers.cloudflare.com/d1/best-practices/read-replication/",
  },
  kv: {
    id: "kv",
    what: "Workers KV reads are served from the location's cache tiers; the hottest keys from memory in under a millisecond; cold keys go to central storage.",
    url: "https://blog.cloudflare.com/faster-workers-kv/",
  },
  doPlacement: {
    id: "do-placement",
    what: "Cloudflare chooses the data centre each Durable Object lives in (the launch post); objects are made near the request that first uses them, as the where-durableobjects-live tracker (github.com/helloimalastair/where-durableobjects-live) records; only some locations host them.",
    url: "https://blog.cloudflare.com/introducing-workers-durable-objects/",
  },
  doStorage: {
    id: "do-storage",
    what: "A SQLite-backed Durable Object's write is replicated to nearby machines before the object's output is released (its output gate).",
    url: "https://blog.cloudflare.com/sqlite-in-durable-objects/",
  },
  measured: {
    id: "measured",
    what: "The Worker isolate's CPU per call measured on this machine (bench/profile/worker.ts; bench/RESULTS.md, 'The Worker's own CPU per call').",
    url: null,
  },
  assumption: {
    id: "assumption",
    what: "Our assumption; no published figure found (see the note on the step).",
    url: null,
  },
} as const satisfies Record<string, Source>;

/** Figures the model runs on. Every one names its source; change one and the tables follow. */
export interface ModelInputs {
  /** Fibre speed, km per ms (one way). */
  readonly fiberKmPerMs: number;
  /** Route length over line-of-sight distance. */
  readonly routeInflation: number;
  /** A Workers KV read of the access token from the location's cache (hot). */
  readonly kvHotReadMs: number;
  /** SQLite time of the grants query on D1 (indexed; a few dozen rows). */
  readonly d1ReadExecMs: number;
  /** SQLite time of an audit row insert on D1, before its durability wait. */
  readonly d1WriteExecMs: number;
  /** Waiting for a write to be durable on nearby replicas (D1's primary and a Durable Object alike). */
  readonly durableWriteMs: number;
  /** Routing a request to a Durable Object and running its handler, beyond the network round trip. */
  readonly doOverheadMs: number;
  /**
   * Whether the caller's roles have a rate limit. After issue 18 such a call asks the caller's ledger for its
   * count before it is sent (worker/mcp/call-guards.ts: one more Durable Object round trip); before, the
   * count came with the grants query.
   */
  readonly rateLimited: boolean;
  /**
   * The Worker's own CPU per call (measured): before; after, when the grants are read from D1 (a miss of
   * the decision cache); after, when they are reused.
   */
  readonly workerCpuMs: { readonly before: number; readonly afterMiss: number; readonly afterHit: number };
}

export const INPUTS: ModelInputs = {
  fiberKmPerMs: 204,
  routeInflation: 1.5,
  kvHotReadMs: 3,
  d1ReadExecMs: 0.5,
  d1WriteExecMs: 0.5,
  durableWriteMs: 3,
  doOverheadMs: 1,
  rateLimited: true,
  // bench/RESULTS.md, "The Worker's own CPU per call": medians of interleaved runs, console line included
  // (before: c14b5ab, 1.52; after, reused: token verdict and grants reused, 0.93). A miss does what it did
  // in runs 8–10 (the library's check and the grants read): 1.5.
  workerCpuMs: { before: 1.52, afterMiss: 1.5, afterHit: 0.93 },
};

/** Which inputs are published and which are ours. */
export const INPUT_SOURCES: Record<keyof ModelInputs, { readonly source: Source; readonly note: string }> = {
  fiberKmPerMs: { source: SOURCES.fiber, note: "c / 1.47" },
  routeInflation: {
    source: SOURCES.fiber,
    note: "between the paper's 1.3 (best conduits) and 2.1 (its measured rule of thumb); long submarine routes run straighter than US metro pairs (assumption within the published range)",
  },
  kvHotReadMs: {
    source: SOURCES.assumption,
    note: "a hot read in the person's own location, binding hop included; the KV post gives under 1 ms for the hottest keys from memory and shows its percentiles only as a chart. A cold read (first call after a while) adds a trip to central storage, not modelled",
  },
  d1ReadExecMs: {
    source: SOURCES.assumption,
    note: "SQLite on indexed tables; D1 reports it per query as meta.timings.sql_duration_ms",
  },
  d1WriteExecMs: { source: SOURCES.assumption, note: "one row, three indexes" },
  durableWriteMs: {
    source: SOURCES.doStorage,
    note: "the post describes replication to nearby machines before output is released but gives no figure: 3 ms assumed (a round trip within one metro area plus a disk write)",
  },
  doOverheadMs: { source: SOURCES.assumption, note: "routing plus a warm object's handler" },
  rateLimited: {
    source: SOURCES.assumption,
    note: "the dev policy's writer and reader roles have one; without a limit, take one ledger round trip off the after columns",
  },
  workerCpuMs: {
    source: SOURCES.measured,
    note: "sampled CPU of the Worker's isolate per call, simulated services excluded",
  },
};

/**
 * A person, by the line-of-sight distance from their Cloudflare location to the D1 primary (weur, taken as
 * Frankfurt) and to the nearest location that hosts Durable Objects, where the objects made by their first
 * requests live (their container's object and their audit ledger; source do-placement). Distances are
 * great-circle figures rounded; the Durable Object distances are assumptions (not every location hosts
 * objects, and Cloudflare does not publish which do).
 */
export interface Person {
  readonly name: string;
  readonly primaryKm: number;
  readonly objectsKm: number;
  /** To the D1 read replica of their region (one per D1 region, source d1-replicas; the distance assumed). */
  readonly replicaKm: number;
}

export const PEOPLE: readonly Person[] = [
  { name: "near: Frankfurt (primary's region)", primaryKm: 50, objectsKm: 50, replicaKm: 50 },
  { name: "other continent: New York", primaryKm: 6_200, objectsKm: 350, replicaKm: 350 },
  { name: "far: Sydney", primaryKm: 16_500, objectsKm: 50, replicaKm: 50 },
];

/** Round trip over `km` of line-of-sight distance. */
export function rttMs(inputs: ModelInputs, km: number): number {
  return (2 * km * inputs.routeInflation) / inputs.fiberKmPerMs;
}

export type Design =
  | "before"
  | "after: grants read (cache miss)"
  | "after: token and grants reused (within 1 s)"
  | "not built: replica read proven fresh";
export const DESIGNS: readonly Design[] = [
  "before",
  "after: grants read (cache miss)",
  "after: token and grants reused (within 1 s)",
  "not built: replica read proven fresh",
];

export interface Step {
  readonly step: string;
  /** On the path to the answer (serial); false: after the answer (shipment). */
  readonly onPath: boolean;
  readonly ms: number;
  readonly sources: readonly Source[];
}

/**
 * The serial chain of one allowed direct tool call: token → grants → container → audit row → answer.
 * Before: grants from D1's primary and the audit row written to D1's primary. After: grants read from the
 * primary or reused for up to 1 s in the isolate (worker/authz/decision-cache.ts; the library's token
 * verdict likewise, worker/oauth/token-verdicts.ts, so no KV read either), and the audit row made
 * durable in the caller's ledger (a Durable Object near them, worker/audit/ledger.ts) and shipped to D1
 * after the answer.
 */
export function callSteps(inputs: ModelInputs, person: Person, design: Design): Step[] {
  const toPrimary = rttMs(inputs, person.primaryKm);
  const toNearDo = rttMs(inputs, person.objectsKm) + inputs.doOverheadMs;
  const before = design === "before";
  const cpu = inputs.workerCpuMs;
  const steps: Step[] = [
    {
      step: "Worker CPU (token check, decision, bridge credential, JSON)",
      onPath: true,
      ms: before ? cpu.before : design === "after: token and grants reused (within 1 s)" ? cpu.afterHit : cpu.afterMiss,
      sources: [SOURCES.measured],
    },
  ];
  // The library's verdict on the token is reused with the grants, for the same bound (oauth/token-verdicts.ts).
  if (design === "after: token and grants reused (within 1 s)") {
    steps.push({
      step: "token: the library's verdict reused in the isolate (no KV)",
      onPath: true,
      ms: 0,
      sources: [],
    });
  } else {
    steps.push({
      step: "token: KV read (hot)",
      onPath: true,
      ms: inputs.kvHotReadMs,
      sources: [SOURCES.kv, SOURCES.assumption],
    });
  }
  if (design === "after: token and grants reused (within 1 s)") {
    steps.push({ step: "grants: reused in the isolate (no D1)", onPath: true, ms: 0, sources: [] });
  } else if (design === "not built: replica read proven fresh") {
    steps.push({
      step: "grants: D1 read at the region's replica (primary read hedged, not awaited)",
      onPath: true,
      ms: replicaReadMs(inputs, person.replicaKm),
      sources: [SOURCES.d1Replicas, SOURCES.fiber],
    });
  } else {
    steps.push({
      step: "grants: D1 read at the primary",
      onPath: true,
      ms: toPrimary + inputs.d1ReadExecMs,
      sources: [SOURCES.d1Location, SOURCES.fiber],
    });
  }
  if (!before && inputs.rateLimited) {
    steps.push({
      step: "rate limit: the caller's ledger counts (roles with a limit)",
      onPath: true,
      ms: toNearDo,
      sources: [SOURCES.doPlacement, SOURCES.fiber],
    });
  }
  steps.push({
    step: "container: Durable Object request (its own time excluded)",
    onPath: true,
    ms: toNearDo,
    sources: [SOURCES.doPlacement, SOURCES.fiber],
  });
  if (before) {
    steps.push({
      step: "audit row: D1 write at the primary",
      onPath: true,
      ms: toPrimary + inputs.d1WriteExecMs + inputs.durableWriteMs,
      sources: [SOURCES.d1Location, SOURCES.fiber, SOURCES.doStorage],
    });
  } else {
    steps.push({
      step: "audit row: the caller's ledger (Durable Object storage)",
      onPath: true,
      ms: toNearDo + inputs.durableWriteMs,
      sources: [SOURCES.doPlacement, SOURCES.doStorage],
    });
    steps.push({
      step: "audit row: shipment to D1 (alarm, after the answer)",
      onPath: false,
      ms: toPrimary + inputs.d1WriteExecMs + inputs.durableWriteMs,
      sources: [SOURCES.d1Location, SOURCES.fiber],
    });
  }
  return steps;
}

/** Time to the answer: the steps on the path, in series. */
export function pathMs(steps: readonly Step[]): number {
  return steps.filter((s) => s.onPath).reduce((sum, s) => sum + s.ms, 0);
}

/**
 * A read at a D1 replica. Not built: used for decisions only if the replica's answer carried its own proof
 * of freshness (bench/RESULTS.md, goal 2, "Not built"), because a replica's lag has no published bound.
 */
export function replicaReadMs(inputs: ModelInputs, replicaKm: number): number {
  return rttMs(inputs, replicaKm) + inputs.d1ReadExecMs;
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(1) : Math.round(ms).toString());

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** The report: totals per person and design, each person's steps, and the inputs with their sources. */
export function report(inputs: ModelInputs = INPUTS): string {
  const totals = PEOPLE.map((person) => [
    person.name,
    fmt(rttMs(inputs, person.primaryKm)),
    fmt(rttMs(inputs, person.objectsKm)),
    ...DESIGNS.map((design) => fmt(pathMs(callSteps(inputs, person, design)))),
  ]);
  const perStep = PEOPLE.flatMap((person) => {
    const byDesign = DESIGNS.map((design) => callSteps(inputs, person, design));
    const names = [...new Set(byDesign.flatMap((steps) => steps.map((s) => s.step)))];
    return names.map((name) => [
      person.name,
      name,
      ...byDesign.map((steps) => {
        const step = steps.find((s) => s.step === name);
        if (!step) return "–";
        return step.onPath ? fmt(step.ms) : `(${fmt(step.ms)} after)`;
      }),
    ]);
  });
  const inputRows = (Object.keys(INPUT_SOURCES) as (keyof ModelInputs)[]).map((key) => {
    const value = inputs[key];
    const shown =
      typeof value === "object"
        ? `${value.before} → ${value.afterMiss} (miss), ${value.afterHit} (reused)`
        : String(value);
    const { source, note } = INPUT_SOURCES[key];
    return [key, shown, source.url ? `[${source.id}](${source.url})` : source.id, note];
  });
  return [
    "**This is a model, not a measurement.** Milliseconds to the answer for one allowed tool call on the direct path, the container's own time and the person's first mile left out (the same in every column).",
    "",
    markdownTable(["person (D1 primary in weur)", "RTT to the primary", "RTT to their objects", ...DESIGNS], totals),
    "",
    markdownTable(["person", "step", ...DESIGNS], perStep),
    "",
    '"not built": the column for a replica read whose answer proves it is less than 1 s behind the primary (bench/RESULTS.md, goal 2); it holds only while the replica keeps up, which no published figure promises.',
    "",
    markdownTable(["input", "value", "source", "note"], inputRows),
    "",
    ...Object.values(SOURCES)
      .filter((s) => s.url)
      .map((s) => `- ${s.id}: ${s.what} ${s.url}`),
  ].join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  parseArgs({ options: {} });
  process.stdout.write(`${report()}\n`);
}
