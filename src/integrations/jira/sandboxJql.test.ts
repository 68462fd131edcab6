/** The sandbox's JQL dates, read as Jira reads them: minute precision in the searching account's time zone. */
import { describe, expect, it } from "vitest";
import { JqlError, parseJql, type JqlIssue } from "./sandboxJql.js";

const at = (iso: string): number => Date.parse(iso);
const issue = (n: number, updated: number, extra: Partial<JqlIssue> = {}): JqlIssue => ({
  id: String(10_000 + n),
  key: `SBX-${n}`,
  projectKey: "SBX",
  issueType: "Task",
  summary: `Issue ${n}`,
  descriptionText: "",
  labels: [],
  created: updated - 1000,
  updated,
  ...extra,
});
const site = (timeZone?: string, nowMs?: number) => ({ projectKeys: ["SBX"], issueKeys: ["SBX-1"], ...(timeZone ? { timeZone } : {}), ...(nowMs !== undefined ? { nowMs } : {}) });
const keys = (jql: string, issues: JqlIssue[], s = site()) => {
  const q = parseJql(jql, s);
  return q.sort(issues.filter(q.where ?? (() => true))).map((i) => i.key);
};

describe("the Jira sandbox's JQL dates", () => {
  it("reads a date literal in the account's time zone, 14 hours from UTC included", () => {
    const issues = [issue(1, at("2026-12-01T09:58:59Z")), issue(2, at("2026-12-01T09:59:00Z")), issue(3, at("2026-12-01T09:59:30Z"))];
    // 23:59 in Kiritimati (UTC+14) is 09:59 UTC.
    expect(keys('updated >= "2026/12/01 23:59" ORDER BY updated ASC', issues, site("Pacific/Kiritimati"))).toEqual(["SBX-2", "SBX-3"]);
    expect(keys('updated >= "2026-12-01 23:59"', issues, site("Pacific/Kiritimati"))).toHaveLength(2);
    // The same literal in UTC names a time fourteen hours later: nothing.
    expect(keys('updated >= "2026/12/01 23:59"', issues, site())).toEqual([]);
    expect(keys('updated < "2026/12/01 23:59"', issues, site("Pacific/Kiritimati"))).toEqual(["SBX-1"]);
    // A date alone is that day's midnight, locally.
    expect(keys('updated >= "2026/12/01" AND updated < "2026/12/02" ORDER BY key', issues, site("Pacific/Kiritimati"))).toEqual(["SBX-1", "SBX-2", "SBX-3"]);
    expect(keys('updated >= "2026/12/02"', issues, site("Pacific/Kiritimati"))).toEqual([]);
  });

  it("reads a repeated local minute as its earlier instant, and periods from now", () => {
    // New York 2026-11-01 01:30 happens at 05:30Z (EDT) and 06:30Z (EST).
    const issues = [issue(1, at("2026-11-01T05:45:00Z")), issue(2, at("2026-11-01T06:45:00Z"))];
    expect(keys('updated >= "2026/11/01 01:30"', issues, site("America/New_York"))).toHaveLength(2);
    const now = at("2026-12-01T12:00:00Z");
    const recent = [issue(1, now - 4 * 60_000), issue(2, now - 2 * 86_400_000), issue(3, now - 9 * 86_400_000)];
    expect(keys('updated >= "-5m"', recent, site("UTC", now))).toEqual(["SBX-1"]);
    expect(keys('updated >= "-1w 1d" ORDER BY updated DESC', recent, site("UTC", now))).toEqual(["SBX-1", "SBX-2"]);
  });

  it("refuses a date Jira would not read, in Jira's words", () => {
    expect(() => parseJql('updated >= "yesterday"', site())).toThrow(JqlError);
    let refused: unknown;
    try {
      parseJql('updated >= "2026/13/01" AND created > "1st May"', site());
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(JqlError);
    {
      expect((refused as JqlError).messages).toEqual([
        "Date value '2026/13/01' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.",
        "Date value '1st May' for field 'created' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.",
      ]);
    }
    expect(() => parseJql('updated ~ "2026/12/01"', site())).toThrow(/The operator '~' is not supported by the 'updated' field/);
  });

  it("filters by status and assignee", () => {
    const issues = [issue(1, 1, { status: "Done", assigneeAccountId: "acc-1" }), issue(2, 2, { status: "To Do" }), issue(3, 3, { status: "In Progress", assigneeAccountId: "acc-2" })];
    expect(keys('status = "done"', issues)).toEqual(["SBX-1"]);
    expect(keys('status in ("To Do", "In Progress") ORDER BY key', issues)).toEqual(["SBX-2", "SBX-3"]);
    expect(keys("assignee = acc-2", issues)).toEqual(["SBX-3"]);
    expect(keys("assignee != acc-2 ORDER BY key", issues)).toEqual(["SBX-1", "SBX-2"]);
  });
});
