import { ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import { HttpError } from "../http/errors.ts";
import { readRequestBytesAtMost } from "../http/read-capped.ts";

/** One request body at most: the MCP SDK's own limit, and what the bridge accepts (container/src/contract.ts). */
export const MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024;
/** JSON-RPC batches longer than this are refused (the SDK's fix for GHSA-f897-62hf-6gxq uses 100). */
export const MAX_BATCH_MESSAGES = 100;

/** Reads a JSON body with a hard size cap, without trusting Content-Length. */
export async function readJsonBody(request: Request): Promise<unknown> {
  return (await readJsonMessage(request)).message;
}

/** Like `readJsonBody`, and also returns the bytes read, for passing the body on unchanged. */
export async function readJsonMessage(
  request: Request,
): Promise<{ readonly bytes: Uint8Array; readonly message: unknown }> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_REQUEST_BODY_BYTES) throw tooLarge();
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, "Content-Type must be application/json.", { rpcCode: ErrorCode.InvalidRequest });
  }
  if (!request.body) throw new HttpError(400, "The request has no body.", { rpcCode: ErrorCode.ParseError });
  const bytes = await readRequestBytesAtMost(request, MAX_REQUEST_BODY_BYTES);
  if (bytes === null) throw tooLarge();
  let message: unknown;
  try {
    message = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new HttpError(400, "The request body is not valid JSON.", { rpcCode: ErrorCode.ParseError });
  }
  if (Array.isArray(message) && message.length > MAX_BATCH_MESSAGES) {
    throw new HttpError(413, `A batch may hold at most ${MAX_BATCH_MESSAGES} messages.`, {
      rpcCode: ErrorCode.InvalidRequest,
    });
  }
  return { bytes, message };
}

function tooLarge(): HttpError {
  return new HttpError(413, `The request body is larger than ${MAX_REQUEST_BODY_BYTES} bytes.`, {
    rpcCode: ErrorCode.InvalidRequest,
  });
}

/**
 * JSON-RPC batches exist in MCP 2025-03-26 only: 2024-11-05 predates them in MCP's transports and
 * 2025-06-18 removed them. A batch under another version is refused, not half-processed.
 */
export function batchesAllowed(protocolVersion: string): boolean {
  return protocolVersion === "2025-03-26";
}
