/** A Jira issue as the REST API answers it, and as the actions hand it on; the API version of a connection. */
import { z } from "zod";
import type { ActionContext } from "../../shared/action.js";

/** Cloud (OAuth, API token) speaks v3 (ADF descriptions); Data Center's personal access tokens v2 (wiki markup). */
export function apiVersionOf(ctx: ActionContext): "2" | "3" {
  return ctx.connection.authMethod === "personal_access_token" ? "2" : "3";
}

export const issueSchema = z.looseObject({
  id: z.string(),
  key: z.string(),
  self: z.string().optional(),
  fields: z
    .looseObject({
      summary: z.string().optional(),
      status: z.looseObject({ name: z.string() }).nullable().optional(),
      issuetype: z.looseObject({ name: z.string() }).nullable().optional(),
      project: z.looseObject({ key: z.string() }).nullable().optional(),
      assignee: z.looseObject({ displayName: z.string().optional(), accountId: z.string().optional() }).nullable().optional(),
      created: z.string().optional(),
      updated: z.string().optional(),
    })
    .optional(),
});

export const jiraIssue = z.object({
  id: z.string(),
  key: z.string(),
  summary: z.string().optional(),
  status: z.string().optional(),
  issueType: z.string().optional(),
  project: z.string().optional(),
  assignee: z.string().optional(),
  created: z.string().optional(),
  updated: z.string().optional(),
});

export function issueOf(issue: z.infer<typeof issueSchema>): z.input<typeof jiraIssue> {
  const f = issue.fields ?? {};
  return {
    id: issue.id,
    key: issue.key,
    ...(f.summary !== undefined ? { summary: f.summary } : {}),
    ...(f.status?.name ? { status: f.status.name } : {}),
    ...(f.issuetype?.name ? { issueType: f.issuetype.name } : {}),
    ...(f.project?.key ? { project: f.project.key } : {}),
    ...(f.assignee?.displayName ? { assignee: f.assignee.displayName } : {}),
    ...(f.created ? { created: f.created } : {}),
    ...(f.updated ? { updated: f.updated } : {}),
  };
}

export const ISSUE_KEY = /^[A-Z][A-Z0-9_]{0,9}-\d{1,9}$/;
export const DEFAULT_FIELDS = ["summary", "status", "issuetype", "project", "assignee", "created", "updated"];
