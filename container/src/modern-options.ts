import type { ExecuteModern } from "./contract.ts";
import { badRequest } from "./errors.ts";
import { isJsonObject } from "./jsonrpc.ts";
import { LOG_SEVERITY } from "./port.ts";

/**
 * The `modern` member of an `/execute` body (contract.ts, ExecuteModern), narrowed field by field. Only the
 * Worker sends one; anything unexpected is a 400 that names the field, never a guess.
 */

const MODERN_FIELDS: ReadonlySet<string> = new Set(["caps", "logLevel", "binding", "resume"]);
const CAPS_FIELDS = ["sampling", "elicitationForm", "elicitationUrl", "roots"] as const;
const RESUME_FIELDS: ReadonlySet<string> = new Set(["pending", "round", "responses", "cancel"]);
/** A SHA-256 digest as base64url, or hex: what the Worker sends; nothing longer is ever one. */
const BINDING = /^[A-Za-z0-9_-]{16,128}$/;
/** modern-call.ts ids: 16 random bytes, base64url. */
const PENDING_ID = /^[A-Za-z0-9_-]{22}$/;
/** Far beyond what a client drives (the SDK stops at 10 rounds). */
const MAX_ROUND = 1_000;

export function parseModern(value: unknown): ExecuteModern {
  if (!isJsonObject(value)) throw invalid("modern must be an object");
  for (const key of Object.keys(value))
    if (!MODERN_FIELDS.has(key)) throw invalid(`modern.${key.slice(0, 64)} is not allowed`);
  const { caps, logLevel, binding, resume } = value;
  if (!isJsonObject(caps)) throw invalid("modern.caps must be an object");
  for (const key of Object.keys(caps)) {
    if (!(CAPS_FIELDS as readonly string[]).includes(key))
      throw invalid(`modern.caps.${key.slice(0, 64)} is not allowed`);
  }
  for (const key of CAPS_FIELDS)
    if (typeof caps[key] !== "boolean") throw invalid(`modern.caps.${key} must be a boolean`);
  if (logLevel !== null && !(typeof logLevel === "string" && Object.hasOwn(LOG_SEVERITY, logLevel))) {
    throw invalid("modern.logLevel must be null or a logging level");
  }
  if (typeof binding !== "string" || !BINDING.test(binding)) throw invalid("modern.binding is malformed");
  const parsed: ExecuteModern = {
    caps: {
      sampling: caps.sampling === true,
      elicitationForm: caps.elicitationForm === true,
      elicitationUrl: caps.elicitationUrl === true,
      roots: caps.roots === true,
    },
    logLevel,
    binding,
  };
  if (resume === undefined) return parsed;
  if (!isJsonObject(resume)) throw invalid("modern.resume must be an object");
  for (const key of Object.keys(resume)) {
    if (!RESUME_FIELDS.has(key)) throw invalid(`modern.resume.${key.slice(0, 64)} is not allowed`);
  }
  const { pending, round, responses, cancel } = resume;
  if (typeof pending !== "string" || !PENDING_ID.test(pending)) throw invalid("modern.resume.pending is malformed");
  if (typeof round !== "number" || !Number.isSafeInteger(round) || round < 1 || round > MAX_ROUND) {
    throw invalid("modern.resume.round must be a whole number from 1");
  }
  if (!isJsonObject(responses)) throw invalid("modern.resume.responses must be an object");
  if (cancel !== undefined && typeof cancel !== "boolean") throw invalid("modern.resume.cancel must be a boolean");
  return { ...parsed, resume: { pending, round, responses, ...(cancel === undefined ? {} : { cancel }) } };
}

function invalid(message: string) {
  return badRequest("invalid_modern", message);
}
