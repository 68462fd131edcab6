/**
 * Time as Jira's JQL reads it, and as its REST answers write it.
 *
 * A JQL date literal (`"2025/01/31 23:59"`) has minute precision and is read
 * in the calling account's time zone (the `timeZone` of `/myself`), not in
 * UTC. A cursor written carelessly misses the changes made in the minute it
 * names, or everything between UTC and the account's offset, and around a
 * daylight-saving change a local minute may name two instants. So the
 * literal written for a cursor is one whose every reading lies at or before
 * the cursor less the overlap: the search reads a little again, and the
 * mirror de-duplicates by `(id, updated)`.
 */

const MINUTE_MS = 60_000;
/** The widest step a zone's offset takes at once (a day-line jump is a date change, not a repeated minute). */
const MAX_SHIFT_MS = 3 * 60 * MINUTE_MS;
/** The finest step: Lord Howe Island's half-hour change; every zone's offsets are multiples of a quarter hour. */
const SHIFT_STEP_MS = 15 * MINUTE_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws a RangeError naming the zone when the platform does not know it. */
function formatterOf(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    try {
      formatter = new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
      });
    } catch {
      throw new RangeError(`unknown time zone "${timeZone}" (an IANA name such as Europe/Berlin or Pacific/Kiritimati)`);
    }
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Whether the platform knows `timeZone` (an IANA name). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatterOf(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The local minute of `atMs` in `timeZone`, as JQL writes it: `yyyy/MM/dd HH:mm`. */
export function jqlMinute(atMs: number, timeZone: string): string {
  const parts: Record<string, string> = {};
  for (const part of formatterOf(timeZone).formatToParts(new Date(atMs))) parts[part.type] = part.value;
  return `${parts.year}/${parts.month}/${parts.day} ${parts.hour}:${parts.minute}`;
}

/**
 * The latest start of a minute that the local literal of `atMs` may be read
 * as: a minute repeated by a daylight-saving change is read at either of its
 * instants, and a search must not start after the later one.
 */
function latestReading(minuteStartMs: number, timeZone: string): number {
  const literal = jqlMinute(minuteStartMs, timeZone);
  let latest = minuteStartMs;
  for (let shift = SHIFT_STEP_MS; shift <= MAX_SHIFT_MS; shift += SHIFT_STEP_MS) {
    if (jqlMinute(minuteStartMs + shift, timeZone) === literal) latest = minuteStartMs + shift;
  }
  return latest;
}

/**
 * The JQL literal to search from for a cursor at `cursorMs`: the local
 * minute at least `overlapMs` before it, moved back further while any
 * reading of it would lie after `cursorMs - overlapMs`.
 */
export function cursorLiteral(cursorMs: number, timeZone: string, overlapMs: number = MINUTE_MS): string {
  if (!Number.isFinite(cursorMs)) throw new RangeError(`a cursor is a time in epoch milliseconds (got ${cursorMs})`);
  if (!(overlapMs >= 0)) throw new RangeError(`the overlap is a duration of 0 ms or more (got ${overlapMs})`);
  const bound = cursorMs - overlapMs;
  let minute = Math.floor(bound / MINUTE_MS) * MINUTE_MS;
  while (latestReading(minute, timeZone) > bound) minute -= MINUTE_MS;
  return jqlMinute(minute, timeZone);
}

/** `updated >= "<literal>"`, the bound a cursor puts on a search. */
export function updatedSince(cursorMs: number, timeZone: string, overlapMs?: number): string {
  return `updated >= "${cursorLiteral(cursorMs, timeZone, overlapMs)}"`;
}

const JIRA_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:?\d{2})$/;

/**
 * A timestamp as Jira's REST API writes it (`2024-01-01T10:00:00.000+0000`:
 * an offset without a colon, which `Date.parse` does not take everywhere) in
 * epoch milliseconds; undefined for anything else.
 */
export function parseJiraTime(value: string | null | undefined): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = JIRA_TIMESTAMP.exec(value);
  if (!match) return undefined;
  const offset = match[2] === "Z" ? "Z" : `${match[2]!.slice(0, 3)}:${match[2]!.slice(-2)}`;
  const ms = Date.parse(`${match[1]}${offset}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Epoch milliseconds as Jira writes a timestamp, in UTC: `2024-01-01T10:00:00.000+0000`. */
export function jiraTime(atMs: number): string {
  return new Date(atMs).toISOString().replace("Z", "+0000");
}
