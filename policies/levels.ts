/**
 * Permission levels, ordered. A grant of a level includes every lower level:
 * `read` < `write` < `execute` < `admin`.
 */
export const LEVELS = ["read", "write", "execute", "admin"] as const;

export type Level = (typeof LEVELS)[number];

export function isLevel(value: unknown): value is Level {
  return typeof value === "string" && (LEVELS as readonly string[]).includes(value);
}

/** The rank of a level: 0 for `read` up to 3 for `admin`. */
export function levelRank(level: Level): number {
  return LEVELS.indexOf(level);
}

/** Whether holding `granted` is enough for something that needs `needed`. */
export function levelCovers(granted: Level, needed: Level): boolean {
  return levelRank(granted) >= levelRank(needed);
}

/** The higher of two levels. */
export function maxLevel(a: Level, b: Level): Level {
  return levelRank(a) >= levelRank(b) ? a : b;
}
