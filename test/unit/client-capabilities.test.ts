import { describe, expect, it } from "vitest";
import { catalogSnapshot } from "../../policies/catalog.snapshot.ts";
import { SERVER_IDS } from "../../policies/catalog.ts";
import {
  ALL_CLIENT_CAPABILITIES,
  CAPABILITY_PROBES,
  CLIENT_CAPABILITY_NAMES,
  declaredCapabilities,
  toolNeeds,
  usableWith,
} from "../../policies/client-capabilities.ts";

/**
 * "A client sees what it can use": what a client's capabilities object declares, and which snapshot tools
 * it can use. The snapshot's `needs` are read from the real servers (test/unit/catalog-snapshot.test.ts).
 */
describe("a client sees what it can use: declared capabilities", () => {
  it("reads each capability the way servers do; an empty elicitation is form mode", () => {
    expect([...declaredCapabilities({})]).toEqual([]);
    expect([...declaredCapabilities(undefined)]).toEqual([]);
    expect([...declaredCapabilities("sampling")]).toEqual([]);
    expect([...declaredCapabilities({ elicitation: {} })]).toEqual(["elicitation.form"]);
    expect([...declaredCapabilities({ elicitation: { url: {} } })]).toEqual(["elicitation.url"]);
    expect([...declaredCapabilities(ALL_CLIENT_CAPABILITIES)].sort()).toEqual([...CLIENT_CAPABILITY_NAMES].sort());
    for (const name of CLIENT_CAPABILITY_NAMES)
      expect([...declaredCapabilities(CAPABILITY_PROBES[name])]).toEqual([name]);
  });

  it("a value that is not an object declares nothing (sampling: true, roots: null)", () => {
    expect([...declaredCapabilities({ sampling: true, roots: null, elicitation: [] })]).toEqual([]);
  });
});

describe("a client sees what it can use: gated snapshot tools", () => {
  it("a tool with no needs is usable by every client; a gated one only with one of its needs", () => {
    const nothing = declaredCapabilities({});
    const all = declaredCapabilities(ALL_CLIENT_CAPABILITIES);
    for (const server of SERVER_IDS) {
      for (const tool of Object.keys(catalogSnapshot[server].tools)) {
        const needs = toolNeeds(server, tool);
        expect(usableWith(all, server, tool)).toBe(true);
        expect(usableWith(nothing, server, tool)).toBe(needs === null);
        for (const name of CLIENT_CAPABILITY_NAMES) {
          expect(usableWith(new Set([name]), server, tool)).toBe(needs === null || needs.includes(name));
        }
      }
    }
  });

  it("a tool the snapshot does not know needs nothing known (the server decides what it lists)", () => {
    expect(toolNeeds("everything", "not-in-the-snapshot")).toBeNull();
    expect(usableWith(new Set(), "everything", "not-in-the-snapshot")).toBe(true);
  });

  it("everything gates exactly trigger-sampling-request, the elicitation triggers and get-roots-list", () => {
    const gated = Object.keys(catalogSnapshot.everything.tools).filter((t) => toolNeeds("everything", t) !== null);
    expect(gated.sort()).toEqual([
      "get-roots-list",
      "trigger-elicitation-request",
      "trigger-sampling-request",
      "trigger-url-elicitation",
    ]);
  });
});
