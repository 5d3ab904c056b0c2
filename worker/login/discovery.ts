import { z } from "zod";
import { LoginError } from "./errors.ts";
import { getJson } from "./upstream-http.ts";

/** A provider's endpoints rarely change; re-read them hourly so a key or endpoint move is picked up. */
const DISCOVERY_CACHE_MS = 3_600_000;

const HttpsUrl = z
  .string()
  .max(2_048)
  .refine((v) => URL.parse(v)?.protocol === "https:", { message: "must be an https URL" });

/** The fields of an OpenID Provider Configuration (OpenID Connect Discovery 1.0 §3) that we use. */
const DiscoveryDocument = z.object({
  issuer: z.string(),
  authorization_endpoint: HttpsUrl,
  token_endpoint: HttpsUrl,
  jwks_uri: HttpsUrl,
  id_token_signing_alg_values_supported: z.array(z.string()).optional(),
});
export type DiscoveryDocument = z.infer<typeof DiscoveryDocument>;

/**
 * Fetches and caches an issuer's discovery document, in memory, per isolate. A failed fetch is not cached,
 * so the next sign-in tries again.
 */
export class DiscoveryCache {
  readonly #issuer: string;
  #cached: { doc: DiscoveryDocument; fetchedAtMs: number } | undefined;

  constructor(issuer: string) {
    this.#issuer = issuer;
  }

  async get(): Promise<DiscoveryDocument> {
    const cached = this.#cached;
    if (cached && Date.now() - cached.fetchedAtMs < DISCOVERY_CACHE_MS) return cached.doc;
    const url = `${this.#issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const doc = await getJson(url, DiscoveryDocument, "The login provider's discovery document");
    // SECURITY: OpenID Connect Discovery §4.3: the document must name exactly the issuer we asked, or a
    // compromised or confused document could make us accept another issuer's ID tokens.
    if (doc.issuer !== this.#issuer) {
      throw new LoginError("unavailable", "The login provider's discovery document names another issuer", {
        reason: "discovery_issuer_mismatch",
      });
    }
    this.#cached = { doc, fetchedAtMs: Date.now() };
    return doc;
  }
}
