import { describe, expect, it } from "vitest";
import { importBridgeKey } from "../../container/src/contract.ts";
import { bridgeFetchFor, CONTAINER_LIMIT_RETRY_AFTER_SECONDS } from "../../worker/bridge/router.ts";
import { HttpError } from "../../worker/http/errors.ts";

// Issue 15, defect 5: when every container the deployment may run is in use, Cloudflare provides no
// instance and @cloudflare/containers answers 503 with its own text. The gateway turns that into a
// clear 503 with Retry-After that names the limit, instead of a generic failure.
// FakeContainerNamespace: a Durable Object namespace whose stub answers like the library (no container can run here).
const LIBRARY_NO_INSTANCE =
  "There is no Container instance available at this time.\nThis is likely because you have reached your max concurrent instance count (set in wrangler config) or are you currently provisioning the Container.";

function fakeContainerNamespace(response: () => Response): DurableObjectNamespace {
  const stub = { fetch: async () => response() };
  return {
    idFromName: (name: string) => ({ name }),
    get: () => stub,
  } as unknown as DurableObjectNamespace;
}

async function route(response: () => Response) {
  const key = await importBridgeKey("k".repeat(48));
  return bridgeFetchFor({ key, insecureDevBridgeUrl: null, containers: fakeContainerNamespace(response) }, "mock:bob");
}

describe("a refused container start is a 503 naming the limit, with Retry-After (never a hang)", () => {
  it("the library's no-instance 503 becomes a HttpError naming hatago:maxInstances", async () => {
    const fetchBridge = await route(() => new Response(LIBRARY_NO_INSTANCE, { status: 503 }));
    const error = await fetchBridge("memory", "/servers/memory/mcp", { method: "POST" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toMatchObject({ status: 503, retryAfterSeconds: CONTAINER_LIMIT_RETRY_AFTER_SECONDS });
    expect((error as Error).message).toMatch(/container limit \(hatago:maxInstances\) is reached/);
  });

  it("any other answer of the bridge passes through untouched, also its own 503", async () => {
    const fetchBridge = await route(() => new Response("replay cache full", { status: 503 }));
    const response = await fetchBridge("memory", "/servers/memory/mcp", { method: "POST" });
    expect(response.status).toBe(503);
    expect(await response.text()).toBe("replay cache full");
  });
});
