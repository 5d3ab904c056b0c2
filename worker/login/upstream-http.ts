import type { z } from "zod";
import { LoginError } from "./errors.ts";

/** An identity provider that has not answered in this long is treated as down. */
const UPSTREAM_TIMEOUT_MS = 10_000;
/** Discovery documents, JWKS and user records are small; a larger answer is refused unread. */
const MAX_UPSTREAM_BODY_BYTES = 1_048_576;

/**
 * GETs a JSON document from an identity provider and narrows it with `schema`. Any failure (network,
 * timeout, status, size, shape) is a LoginError("unavailable") whose public message names only `what`.
 *
 * Upstream requests use the global fetch, like arctic and jose do: there is one way out of the Worker,
 * and tests replace it with named fakes (test/workers/oauth/fakes/).
 */
export async function getJson<T>(
  url: string,
  schema: z.ZodType<T>,
  what: string,
  headers: HeadersInit = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Accept: "application/json", "User-Agent": "hatago-auth", ...headers },
      // Never follow a redirect to wherever it points (Workers has no "error" mode; a 3xx is refused below).
      redirect: "manual",
      signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS),
    });
  } catch (cause) {
    throw new LoginError("unavailable", `${what} could not be reached`, { reason: "upstream_unreachable", cause });
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new LoginError("unavailable", `${what} answered HTTP ${response.status}`, { reason: "upstream_http_error" });
  }
  const length = Number(response.headers.get("Content-Length") ?? "0");
  if (length > MAX_UPSTREAM_BODY_BYTES) {
    await response.body?.cancel();
    throw new LoginError("unavailable", `${what} answered with too much data`, { reason: "upstream_too_large" });
  }
  let body: unknown;
  try {
    const text = await response.text();
    if (text.length > MAX_UPSTREAM_BODY_BYTES) throw new Error("body too large");
    body = JSON.parse(text);
  } catch (cause) {
    throw new LoginError("unavailable", `${what} answered with something that is not JSON`, {
      reason: "upstream_not_json",
      cause,
    });
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path.join(".") || "(root)";
    throw new LoginError("unavailable", `${what} answered with an unexpected document (field ${field})`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}
