import { type MockInstance, vi } from "vitest";

/** A stand-in for a service on the internet that cannot run here (GitHub, Cloudflare Access, an IdP). */
export interface FakeUpstream {
  handles(url: URL): boolean;
  handle(request: Request): Promise<Response>;
}

/**
 * FakeNetwork: replaces the global fetch of this isolate (the Worker under test runs in it too, and
 * arctic, jose and our code all use the global fetch) with the given fakes. A request no fake handles
 * fails like an unreachable host, and is recorded, so a test can assert nothing left the Worker.
 */
export class FakeNetwork {
  readonly requests: URL[] = [];
  readonly unrouted: URL[] = [];
  readonly #spy: MockInstance<typeof fetch>;

  constructor(fakes: readonly FakeUpstream[]) {
    this.#spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const request = new Request(input, init);
      const url = new URL(request.url);
      this.requests.push(url);
      const fake = fakes.find((f) => f.handles(url));
      if (!fake) {
        this.unrouted.push(url);
        throw new TypeError(`FakeNetwork: no route to ${url.host}`);
      }
      return fake.handle(request);
    });
  }

  restore(): void {
    this.#spy.mockRestore();
  }
}
