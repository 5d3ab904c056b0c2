import { readBytesAtMost } from "../http/read-capped.ts";

/** Token and revocation requests are a few hundred bytes; this is far above any real one. */
export const MAX_TOKEN_REQUEST_BYTES = 65_536;

/**
 * The form of a token endpoint request, read from a clone so the OAuth library still reads the body
 * itself (the same bytes). `null` when the body is not a form: the library refuses other content types
 * with its own error, and nothing of ours applies. `"too_large"` past MAX_TOKEN_REQUEST_BYTES, without
 * reading further.
 */
export async function readTokenForm(request: Request): Promise<URLSearchParams | "too_large" | null> {
  const type = request.headers.get("Content-Type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") return null;
  const bytes = await readBytesAtMost(request.clone().body, MAX_TOKEN_REQUEST_BYTES);
  if (bytes === null) return "too_large";
  return new URLSearchParams(new TextDecoder().decode(bytes));
}

/**
 * A parameter sent exactly once and not empty, else `null`. The library refuses a repeated parameter
 * (OAuth 2.1 §3.1) before looking at it, so a repeated one never means anything to our checks either.
 */
export function singleParam(form: URLSearchParams, name: string): string | null {
  const values = form.getAll(name);
  return values.length === 1 && values[0] ? values[0] : null;
}

/** An error in the library's own shape for the token endpoint (RFC 6749 §5.2), never cached. */
export function tokenError(status: number, error: string, description: string): Response {
  return Response.json(
    { error, error_description: description },
    { status, headers: { "Cache-Control": "no-store", Pragma: "no-cache" } },
  );
}
