/**
 * The one canonical JSON encoder of the audit log: the arguments' digest (audit.ts, argsDigest) and every
 * row's chain hash (chain.ts) are computed over it. Kept in a module of its own, free of Workers types, so
 * `npm run audit:verify` (Node) hashes rows with the very code the ledger used.
 */

/**
 * JSON with object keys sorted at every depth, so equal values have one spelling.
 *
 * SECURITY: iterative, never recursive. Its input is whatever a client sent as arguments; the gateway
 * bounds nesting at the boundary (container/src/contract.ts, MAX_JSON_DEPTH), and this walk would not
 * overflow the stack even without that bound (a 5,000-deep value once did, recursively).
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  // Work items: a value to write, or a literal piece of text (a separator or a closing bracket).
  const work: ({ readonly value: unknown } | string)[] = [{ value }];
  for (let item = work.pop(); item !== undefined; item = work.pop()) {
    if (typeof item === "string") {
      out.push(item);
      continue;
    }
    const v = item.value;
    if (v === null || typeof v !== "object") {
      out.push(JSON.stringify(v) ?? "null");
    } else if (Array.isArray(v)) {
      // Pushed in reverse: the stack pops them in order.
      work.push("]");
      for (let i = v.length - 1; i >= 0; i--) {
        work.push({ value: v[i] });
        if (i > 0) work.push(",");
      }
      out.push("[");
    } else {
      const record = v as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      work.push("}");
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        work.push({ value: record[key] });
        work.push(`${JSON.stringify(key)}:`);
        if (i > 0) work.push(",");
      }
      out.push("{");
    }
  }
  return out.join("");
}
