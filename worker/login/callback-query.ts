import { z } from "zod";
import { HttpError } from "../http/errors.ts";

/** An upstream authorization code or error code is short; anything longer is not from a real provider. */
const MAX_CODE_CHARS = 2_048;

// `error` first: an answer that carries an error is an error, whatever else it carries.
const Callback = z.union([
  z.object({ error: z.string().min(1).max(256) }),
  z.object({ code: z.string().min(1).max(MAX_CODE_CHARS) }),
]);
export type OAuthCallback = z.infer<typeof Callback>;

/** Reads `code` or `error` from an OAuth callback query; anything else is a 400 before `state` is touched. */
export function readOAuthCallback(request: Request): OAuthCallback {
  const query = new URL(request.url).searchParams;
  for (const name of ["code", "error", "state"]) {
    if (query.getAll(name).length > 1)
      throw new HttpError("bad_request", `The ${name} parameter was sent more than once`);
  }
  const parsed = Callback.safeParse(Object.fromEntries(query));
  if (!parsed.success) throw new HttpError("bad_request", "The login provider's answer has no code");
  return parsed.data;
}
