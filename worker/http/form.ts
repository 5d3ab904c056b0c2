import { HttpError } from "./errors.ts";

/**
 * Reads an `application/x-www-form-urlencoded` body with the given fields, each at most once. A repeated
 * field is refused rather than guessed at (OAuth 2.1 §3.1); unknown fields are ignored, so extra hidden
 * fields added by a forger change nothing.
 */
export async function readSingleValueForm(request: Request, names: readonly string[]): Promise<Map<string, string>> {
  const type = request.headers.get("Content-Type")?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    throw new HttpError("unsupported_media_type", "This form must be sent as application/x-www-form-urlencoded");
  }
  let body: URLSearchParams;
  try {
    // Invalid UTF-8 is refused rather than replaced, so a field never means something other than was sent.
    body = new URLSearchParams(
      new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(await request.arrayBuffer()),
    );
  } catch (cause) {
    throw new HttpError("bad_request", "The form could not be read", { cause });
  }
  const fields = new Map<string, string>();
  for (const name of names) {
    const values = body.getAll(name);
    if (values.length > 1) throw new HttpError("bad_request", `The form field ${name} is repeated`);
    const [value] = values;
    if (value !== undefined) fields.set(name, value);
  }
  return fields;
}
