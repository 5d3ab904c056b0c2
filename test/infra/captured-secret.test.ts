import { describe, expect, it } from "vitest";
import { makeCapturedSecretProvider } from "../../infra/captured-secret.ts";

// Issue 15, defect 4: the Access SaaS app's client secret is returned only on create; an update of the
// app that comes back without it must not take the Worker's secret away.
describe("CapturedSecret: the Access client secret survives updates of its app", () => {
  const provider = makeCapturedSecretProvider();
  const olds = { owner: "app-1", value: "secret-from-create" };

  it("captures the value when the app is created", async () => {
    expect(await provider.create(olds)).toEqual({ id: "captured:app-1", outs: olds });
  });

  it("an update of the app that drops the secret (empty) changes nothing", async () => {
    expect(await provider.diff?.("captured:app-1", olds, { owner: "app-1", value: "" })).toMatchObject({
      changes: false,
      replaces: [],
    });
    expect(await provider.update?.("captured:app-1", olds, { owner: "app-1", value: "" })).toEqual({ outs: olds });
  });

  it("a new app (replaced: a new id) captures its new secret", async () => {
    expect(await provider.diff?.("captured:app-1", olds, { owner: "app-2", value: "new" })).toMatchObject({
      changes: true,
      replaces: ["owner"],
    });
  });

  it("refuses to capture nothing, naming the app and the way out (an imported app, lost state)", async () => {
    await expect(provider.create({ owner: "app-3", value: "" })).rejects.toThrow(/app-3 is empty.*replace the app/);
  });
});
