import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cursorLiteral, isTimeZone, jiraTime, jqlMinute, parseJiraTime, updatedSince } from "./jqlDate.js";

const MINUTE = 60_000;
/** Zones at the edges: 14 hours ahead, 12 and 11 behind, quarter and half hours, and daylight-saving changes of an hour and of half an hour. */
const ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Pago_Pago", "Asia/Kathmandu", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham"];

/** Every minute start within five hours of `aroundMs` whose local minute in `zone` is `literal`: how Jira may read it. */
function readingsOf(literal: string, zone: string, aroundMs: number): number[] {
  const out: number[] = [];
  const start = Math.floor(aroundMs / MINUTE) * MINUTE - 5 * 60 * MINUTE;
  for (let m = start; m <= start + 10 * 60 * MINUTE; m += MINUTE) if (jqlMinute(m, zone) === literal) out.push(m);
  return out;
}

describe("JQL dates in the account's time zone", () => {
  it("writes the local minute, 14 hours ahead of UTC included", () => {
    const at = Date.parse("2026-12-01T09:59:30Z");
    expect(jqlMinute(at, "Pacific/Kiritimati")).toBe("2026/12/01 23:59");
    expect(jqlMinute(at, "Etc/GMT+12")).toBe("2026/11/30 21:59");
    expect(cursorLiteral(at, "Pacific/Kiritimati")).toBe("2026/12/01 23:58");
    expect(cursorLiteral(at, "UTC", 0)).toBe("2026/12/01 09:59");
    expect(updatedSince(at, "Asia/Kathmandu")).toBe('updated >= "2026/12/01 15:43"');
  });

  it("never starts a search after the cursor less the overlap, however the zone's clocks change", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse("2000-01-01T00:00:00Z"), max: Date.parse("2040-01-01T00:00:00Z") }),
        fc.constantFrom(...ZONES),
        fc.constantFrom(0, MINUTE, 5 * MINUTE),
        (cursor, zone, overlap) => {
          const literal = cursorLiteral(cursor, zone, overlap);
          expect(literal).toMatch(/^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}$/);
          const readings = readingsOf(literal, zone, cursor);
          expect(readings.length).toBeGreaterThan(0);
          // Whichever instant Jira reads the literal as, the search starts at or before cursor - overlap...
          for (const reading of readings) expect(reading).toBeLessThanOrEqual(cursor - overlap);
          // ...and re-reads at most a minute more, or the repeated hour of a clock change.
          expect(Math.min(...readings)).toBeGreaterThan(cursor - overlap - MINUTE - 2 * 60 * MINUTE);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("steps back over a minute that a clock change repeats", () => {
    // New York, 2026-11-01: 01:00-01:59 happens twice (EDT, then EST). A cursor in the first 01:30 must not
    // be written as 01:29, which could be read as the second one, an hour later.
    const firstPass = Date.parse("2026-11-01T05:30:00Z"); // 01:30 EDT
    const literal = cursorLiteral(firstPass, "America/New_York", MINUTE);
    for (const reading of readingsOf(literal, "America/New_York", firstPass)) expect(reading).toBeLessThanOrEqual(firstPass - MINUTE);
    expect(literal).toBe("2026/11/01 00:59");
  });

  it("refuses a zone it does not know and a cursor that is not a time, naming them", () => {
    expect(() => cursorLiteral(0, "Mars/Olympus_Mons")).toThrow(/unknown time zone "Mars\/Olympus_Mons"/);
    expect(() => cursorLiteral(Number.NaN, "UTC")).toThrow(/epoch milliseconds/);
    expect(() => cursorLiteral(0, "UTC", -1)).toThrow(/overlap/);
    expect(isTimeZone("Pacific/Kiritimati")).toBe(true);
    expect(isTimeZone("Nowhere/Else")).toBe(false);
  });

  it("reads Jira's timestamps (offset without a colon) and writes them back", () => {
    expect(parseJiraTime("2024-01-01T10:00:00.000+0000")).toBe(Date.parse("2024-01-01T10:00:00Z"));
    expect(parseJiraTime("2024-01-01T23:30:00.123+1400")).toBe(Date.parse("2024-01-01T09:30:00.123Z"));
    expect(parseJiraTime("2024-01-01T10:00:00.000-05:00")).toBe(Date.parse("2024-01-01T15:00:00Z"));
    for (const bad of ["", "yesterday", "2024-01-01", "2024-01-01T10:00:00.000", null, undefined]) expect(parseJiraTime(bad)).toBeUndefined();
    fc.assert(fc.property(fc.integer({ min: 0, max: Date.parse("2100-01-01T00:00:00Z") }), (ms) => {
        expect(parseJiraTime(jiraTime(ms))).toBe(ms);
      }),
    );
  });
});
