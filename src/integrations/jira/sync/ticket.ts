/**
 * A Jira issue as the ticket mirror keeps it: the fields a workflow reads
 * (key, project, summary, status, assignee, priority, labels, description as
 * text and as the original ADF, created, updated) beside every field the sync
 * asked for as Jira answered them.
 */
import { adfNodeSchema, adfToText, type AdfNode } from "./adf.js";
import { parseJiraTime } from "./jqlDate.js";

export type TicketAssignee = { accountId?: string; displayName?: string };

export type Ticket = {
  id: string;
  key: string;
  project: string | null;
  summary: string | null;
  status: string | null;
  assignee: TicketAssignee | null;
  priority: string | null;
  labels: string[];
  descriptionText: string | null;
  /** Cloud's description document; null on Data Center (wiki markup, kept as text) or when there is none. */
  descriptionAdf: AdfNode | null;
  created: string | null;
  /** Jira's `updated`, as written, and in epoch milliseconds. */
  updated: string;
  updatedMs: number;
  /** Every field the search named, as Jira answered them. */
  fields: Record<string, unknown>;
};

/** The fields the mirror reads; a configuration adds its own to these. */
export const MIRRORED_FIELDS = ["summary", "status", "assignee", "priority", "labels", "description", "created", "updated", "project", "issuetype"] as const;

const nameOf = (value: unknown): string | null => {
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (typeof v.name === "string") return v.name;
    if (typeof v.key === "string") return v.key;
    if (typeof v.value === "string") return v.value;
  }
  return null;
};

/** Reads an issue of a search or GET answer; throws naming what is missing when it is not one. */
export function ticketOf(issue: unknown): Ticket {
  if (!issue || typeof issue !== "object") throw new TypeError("a Jira issue is a JSON object");
  const i = issue as { id?: unknown; key?: unknown; fields?: unknown };
  if (typeof i.id !== "string" || typeof i.key !== "string") throw new TypeError("a Jira issue has a string id and key");
  const fields = i.fields && typeof i.fields === "object" ? (i.fields as Record<string, unknown>) : {};
  const updatedMs = parseJiraTime(fields.updated as string | undefined);
  if (updatedMs === undefined || typeof fields.updated !== "string") throw new TypeError(`issue ${i.key} has no readable updated time (the search must name the updated field)`);
  const project = fields.project && typeof fields.project === "object" ? (fields.project as Record<string, unknown>) : undefined;
  const assignee = fields.assignee && typeof fields.assignee === "object" ? (fields.assignee as Record<string, unknown>) : undefined;
  const description = fields.description;
  const adf = description && typeof description === "object" ? adfNodeSchema.safeParse(description) : undefined;
  return {
    id: i.id,
    key: i.key,
    project: typeof project?.key === "string" ? project.key : null,
    summary: typeof fields.summary === "string" ? fields.summary : null,
    status: nameOf(fields.status),
    assignee: assignee
      ? { ...(typeof assignee.accountId === "string" ? { accountId: assignee.accountId } : {}), ...(typeof assignee.displayName === "string" ? { displayName: assignee.displayName } : {}) }
      : null,
    priority: nameOf(fields.priority),
    labels: Array.isArray(fields.labels) ? fields.labels.filter((l): l is string => typeof l === "string") : [],
    descriptionText: typeof description === "string" ? description : adf?.success ? adfToText(adf.data) : null,
    descriptionAdf: adf?.success ? adf.data : null,
    created: typeof fields.created === "string" ? fields.created : null,
    updated: fields.updated,
    updatedMs,
    fields,
  };
}

/** JSON with object keys in order, so two answers of the same value compare equal. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The field ids whose values differ between two answers (`updated` itself left out). */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  keys.delete("updated");
  return [...keys].filter((k) => stableJson(before[k] ?? null) !== stableJson(after[k] ?? null)).sort();
}
