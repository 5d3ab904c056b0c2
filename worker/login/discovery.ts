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
 * The fields an OAuth client needs from the same document (RFC 8414 §2 names them alike): a provider people
 * connect their own account of (worker/connect/provider-client.ts), which may not be an OpenID provider.
 */
export const EndpointsDocument = z.object({
  issuer: z.string(),
  authorization_endpoint: HttpsUrl,
  token_endpoint: HttpsUrl,
});
export type EndpointsDocument = z.infer<typeof EndpointsDocument>;

/**
 * Fetches and caches an issuer's discovery document, in memory, per isolate, narrowed by `schema`. A
 * failed fetch is not cached, so the next request tries again. The one home of discovery: the login's
 * OpenID provider (DiscoveryCache below) and the providers of connections (EndpointsDocument).
 */
export class IssuerDocumentCache<T extends { issuer: string }> {
  readonly #issuer: string;
  readonly #schema: z.ZodType<T>;
  readonly #what: string;
  #cached: { doc: T; fetchedAtMs: number } | undefined;

  constructor(issuer: string, schema: z.ZodType<T>, what: string) {
    this.#issuer = issuer;
    this.#schema = schema;
    this.#what = what;
  }

  async get(): Promise<T> {
    const cached = this.#cached;
    if (cached && Date.now() - cached.fetchedAtMs < DISCOVERY_CACHE_MS) return cached.doc;
    const url = `${this.#issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const doc = await getJson(url, this.#schema, this.#what);
    // SECURITY: OpenID Connect Discovery §4.3 (RFC 8414 §3.3 alike): the document must name exactly the
    // issuer we asked, or a compromised or confused document could make us accept another issuer's ID
    // tokens, or send codes and refresh tokens to another issuer's endpoints.
    if (doc.issuer !== this.#issuer) {
      throw new LoginError("unavailable", `${this.#what} names another issuer`, {
        reason: "discovery_issuer_mismatch",
      });
    }
    this.#cached = { doc, fetchedAtMs: Date.now() };
    return doc;
  }
}

/** The login's OpenID provider's discovery document. */
export class DiscoveryCache extends IssuerDocumentCache<DiscoveryDocument> {
  constructor(issuer: string) {
    super(issuer, DiscoveryDocument, "The login provider's discovery document");
  }
}
