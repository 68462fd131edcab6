/**
 * What a Jira connection's ticket sync covers and how it behaves, as
 * `PUT /api/integrations/jira/sync/config` takes it: the site (a grant may
 * reach several; the user chooses, the sync never takes the first by
 * default), the scope (projects, or a bounded JQL filter), extra fields, the
 * direction, and the conflict policy per field.
 */
import { z } from "zod";

/** A Jira project key: a capital letter, then capitals, digits or underscores (Jira's default pattern, ten at most). */
const PROJECT_KEY = /^[A-Z][A-Z0-9_]{0,9}$/;
/** A field id: system ids (`summary`), custom fields (`customfield_10020`). */
const FIELD_ID = /^(?:[a-z][A-Za-z0-9]*|customfield_\d{1,9})$/;

export const conflictPolicySchema = z.enum(["reject", "jira", "autoflow"]).describe("reject: a 409 carrying both versions; jira: Jira's value stays; autoflow: the pushed value wins");
export type ConflictPolicy = z.infer<typeof conflictPolicySchema>;

export const syncConfigSchema = z
  .strictObject({
    /** The cloud id (or site URL) of one of the grant's Jira sites; required when the grant reaches more than one. */
    site: z.string().min(1).max(300).optional(),
    projects: z.array(z.string().regex(PROJECT_KEY, "a Jira project key (e.g. SBX)")).min(1).max(50).optional(),
    /** A bounded JQL filter; the sync adds its own `updated` bound and order, so it takes no ORDER BY. */
    jql: z
      .string()
      .min(1)
      .max(2000)
      .refine((jql) => !/\border\s+by\b/i.test(jql), "the filter takes no ORDER BY: the sync orders by updated")
      .optional(),
    /** Fields mirrored beside the standard ones (their values land in the ticket's `fields`). */
    fields: z.array(z.string().regex(FIELD_ID, "a Jira field id (summary, customfield_10020)")).max(50).default([]),
    direction: z.enum(["pull", "push", "both"]).default("both"),
    conflicts: z
      .strictObject({
        default: conflictPolicySchema.default("reject"),
        fields: z.record(z.string().regex(FIELD_ID), conflictPolicySchema).default({}),
      })
      .default({ default: "reject", fields: {} }),
    /** How far before the cursor each pull reads again (JQL dates have minute precision; search lags writes). */
    overlapSeconds: z.int().min(60).max(3600).default(120),
    /** How often the scheduler pulls. */
    intervalSeconds: z.int().min(60).max(86_400).default(300),
    /** How often the id-only scan for deleted issues runs. */
    deleteScanIntervalSeconds: z.int().min(300).max(7 * 86_400).default(3600),
  })
  .superRefine((config, ctx) => {
    if ((config.projects === undefined) === (config.jql === undefined)) {
      ctx.addIssue({ code: "custom", path: ["projects"], message: "name the scope: either projects or jql (a bounded filter), not both" });
    }
  });

export type SyncConfig = z.output<typeof syncConfigSchema>;
export type SyncConfigInput = z.input<typeof syncConfigSchema>;

/** The configured scope as a JQL restriction (parenthesized, ready to AND with the sync's own bound). */
export function scopeJql(config: Pick<SyncConfig, "projects" | "jql">): string {
  if (config.projects) return `project in (${config.projects.map((key) => `"${key}"`).join(", ")})`;
  return `(${config.jql as string})`;
}

/** Whether a field's conflicting change is resolved for Jira, for AutoFlow, or refused. */
export function policyFor(config: Pick<SyncConfig, "conflicts">, field: string): ConflictPolicy {
  return config.conflicts.fields[field] ?? config.conflicts.default;
}
