import type { SqlReader } from "../audit/verify.ts";

/** The verifier's reads (verify.ts) through a D1 binding: the console's; the script reads through wrangler. */
export function d1SqlReader(db: D1Database): SqlReader {
  return {
    async all<T>(sql: string, params: readonly (string | number)[]): Promise<T[]> {
      return (
        await db
          .prepare(sql)
          .bind(...params)
          .all<T>()
      ).results;
    },
  };
}
