import type { JsonSchemaValidator, jsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/types.js";

/**
 * The gateway relays; it does not judge. The SDK validates tool results against `outputSchema` and
 * elicitation answers against `requestedSchema`; in the gateway that would (a) turn a server's
 * malformed output into a gateway error, breaking fidelity (the downstream client validates what it
 * receives, as it would talking to the server directly), and (b) compile every schema with AJV, which
 * needs `new Function`, which Workers forbid. So every value passes as it is.
 */
export const passThroughValidator: jsonSchemaValidator = {
  getValidator<T>(): JsonSchemaValidator<T> {
    return (input: unknown) => ({ valid: true, data: input as T, errorMessage: undefined });
  },
};
