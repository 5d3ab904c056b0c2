import { html, type SafeHtml } from "../http/html.ts";

/**
 * Times on console pages. The server cannot know the admin's time zone, so it renders UTC, labelled, in a
 * `<time datetime>` element; the console's script (console.script.ts) rewrites each into the browser's
 * local time. Filters typed as local times come with the browser's zone (`tz`, set by the same script),
 * and are read in that zone; without the script they are UTC. Exports are always ISO 8601 UTC.
 */
export function timeElement(ms: number): SafeHtml {
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")} UTC</time>`;
}

/** Whether `zone` is an IANA time zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  if (zone.length > 64) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const LOCAL_INPUT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** A `datetime-local` value (`2026-11-05T14:30`) read in `zone`, as epoch ms; `null` if it is not one. */
export function localInputToMs(value: string, zone: string): number | null {
  const m = LOCAL_INPUT.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const wall = Date.UTC(y ?? 0, (mo ?? 1) - 1, d ?? 1, h ?? 0, mi ?? 0, Number.isNaN(s) ? 0 : (s ?? 0));
  if (Number.isNaN(wall)) return null;
  // The zone's offset at the guessed instant, then once more at the result (a DST change in between).
  let utc = wall - offsetMs(wall, zone);
  utc = wall - offsetMs(utc, zone);
  return utc;
}

/** Epoch ms as a `datetime-local` value in `zone` (to refill a filter form). */
export function msToLocalInput(ms: number, zone: string): string {
  const p = partsIn(ms, zone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

function offsetMs(ms: number, zone: string): number {
  const p = partsIn(ms, zone);
  const asUtc = Date.UTC(
    Number(p.year),
    Number(p.month) - 1,
    Number(p.day),
    Number(p.hour),
    Number(p.minute),
    Number(p.second),
  );
  return asUtc - Math.floor(ms / 1000) * 1000;
}

function partsIn(ms: number, zone: string): Record<"year" | "month" | "day" | "hour" | "minute" | "second", string> {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "00";
  return {
    year: get("year").padStart(4, "0"),
    month: get("month"),
    day: get("day"),
    hour: get("hour"),
    minute: get("minute"),
    second: get("second"),
  };
}
