import type { ToolAnnotations } from "./catalog.types.ts";
import type { Level } from "./levels.ts";

/**
 * The level a tool needs: the catalog's override when there is one, else `read` for a tool that
 * declares `readOnlyHint: true`, else `write`. Annotations are hints from the server, so the
 * fallback is the safer `write`, never `read`.
 */
export function toolLevel(
  name: string,
  annotations: ToolAnnotations | undefined,
  overrides: Readonly<Record<string, Level>> | undefined,
): Level {
  const override = overrides && Object.hasOwn(overrides, name) ? overrides[name] : undefined;
  if (override) return override;
  return annotations?.readOnlyHint === true ? "read" : "write";
}
