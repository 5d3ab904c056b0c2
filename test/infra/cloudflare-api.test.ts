import { describe, expect, it } from "vitest";
import { CloudflareApiError, cloudflareApi, registryCredentials } from "../../infra/cloudflare-api.ts";
import { FakeCloudflareApi } from "./fake-cloudflare-api.ts";

const ACCOUNT = "0123456789abcdef0123456789abcdef";
const TOKEN = "fake-token";

describe("Cloudflare API client", () => {
  it("asks the registry credentials endpoint for short-lived push and pull credentials", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    const credentials = await registryCredentials(cloudflareApi({ token: TOKEN, fetch: fake.fetch }), ACCOUNT);
    expect(credentials).toEqual({ username: "v1", password: "fake-registry-password" });
    expect(fake.requests).toEqual([
      expect.objectContaining({
        method: "POST",
        path: `/accounts/${ACCOUNT}/containers/registries/registry.cloudflare.com/credentials`,
        authorization: `Bearer ${TOKEN}`,
        body: { expiration_minutes: 30, permissions: ["push", "pull"] },
      }),
    ]);
  });

  it("refuses to start without a token, and says which variable to set", () => {
    expect(() => cloudflareApi({ token: undefined })).toThrow(/CLOUDFLARE_API_TOKEN is not set/);
  });

  it("turns an API error envelope into an error with the status, codes and messages, never the token", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    const call = registryCredentials(cloudflareApi({ token: "a-wrong-token", fetch: fake.fetch }), ACCOUNT);
    await expect(call).rejects.toThrow(CloudflareApiError);
    await expect(call).rejects.toThrow(/HTTP 403\): \[10000\] Authentication error/);
    await expect(call).rejects.not.toThrow(/a-wrong-token/);
  });

  it("reports a token scoped to another account as the API does", async () => {
    const fake = new FakeCloudflareApi({ accountId: ACCOUNT, token: TOKEN });
    const call = registryCredentials(
      cloudflareApi({ token: TOKEN, fetch: fake.fetch }),
      "ffffffffffffffffffffffffffffffff",
    );
    await expect(call).rejects.toThrow(/HTTP 403\): \[9109\] Unauthorized to access requested resource/);
  });

  it("reports a non-JSON answer (a proxy's error page) with an excerpt", async () => {
    const html: typeof fetch = async () =>
      new Response("<html>520: Web server is returning an unknown error</html>", { status: 520 });
    const call = registryCredentials(cloudflareApi({ token: TOKEN, fetch: html }), ACCOUNT);
    await expect(call).rejects.toThrow(/HTTP 520\): not JSON: <html>520/);
  });

  it("rejects a success whose result lacks what the caller needs", async () => {
    const empty: typeof fetch = async () => Response.json({ success: true, errors: [], messages: [], result: {} });
    await expect(registryCredentials(cloudflareApi({ token: TOKEN, fetch: empty }), ACCOUNT)).rejects.toThrow(
      /unexpected result/,
    );
  });
});
