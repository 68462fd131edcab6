/**
 * The push side of the Jira ticket sync: AutoFlow's writes to Jira, each
 * read back at once (GET is consistent where search lags) and applied to the
 * mirror as AutoFlow's own change, so the pull that meets it later finds the
 * same `updated` and applies nothing (no echo).
 *
 * An update names the `updated` time its edit was based on (the mirror's
 * copy when left out). When Jira's copy is newer, the fields Jira changed
 * since then are read from its changelog, and a field changed on both sides
 * is resolved by the configured policy: refused (a 409 carrying both
 * versions, nothing sent), Jira's kept, or AutoFlow's sent. A field changed
 * on one side only takes that side. Fields whose value is what Jira already
 * holds are not sent, so a description the user did not change goes back
 * untouched (no lossy ADF round trip).
 *
 * Writes take an `Idempotency-Key`: the first request's answer is stored and
 * a retry with the same key gets it again, never a second issue.
 */
import { createHash } from "node:crypto";
import { ErrorCodes, IntegrationError, invalidInput } from "../../shared/errors.js";
import { z } from "zod";
import type { ActionContext } from "../../shared/action.js";
import type { Database } from "../../../store/schema.js";
import type { Kysely } from "kysely";
import type { MirroredTicket } from "../../../store/ticketMirror.js";
import { adfToText, textToAdf } from "./adf.js";
import { policyFor, type SyncConfig } from "./config.js";
import { fieldsChangedSince, getIssue, path, type JiraTarget } from "./jiraApi.js";
import { parseJiraTime } from "./jqlDate.js";
import { ticketOf, type Ticket } from "./ticket.js";
import type { TicketSync } from "./ticketSync.js";

/** The one-line summary Jira takes (255 characters). */
const summary = z.string().min(1).max(255).regex(/^[^\r\n]*$/, "one line");
const label = z.string().regex(/^\S{1,255}$/, "a label has no spaces");
const accountId = z.string().min(1).max(128);

export const pushFieldsSchema = z.strictObject({
  summary: summary.optional(),
  /** Plain text; on Cloud it becomes ADF, unless it is the text the current document already shows. */
  description: z.string().max(32_000).optional(),
  labels: z.array(label).max(50).optional(),
  /** A priority by name (Highest, High, Medium, Low, Lowest on a new site). */
  priority: z.string().min(1).max(60).optional(),
  /** An account id, or null to unassign. */
  assignee: accountId.nullable().optional(),
});
export type PushFields = z.infer<typeof pushFieldsSchema>;

export const createTicketSchema = pushFieldsSchema.extend({
  /** The project's key; the configured one when the sync covers exactly one project. */
  project: z.string().regex(/^[A-Z][A-Z0-9_]{0,9}$/, "a Jira project key (e.g. SBX)").optional(),
  issueType: z.string().min(1).max(60).default("Task"),
  summary,
});
export const updateTicketSchema = z.strictObject({
  fields: pushFieldsSchema.refine((f) => Object.keys(f).length > 0, "name at least one field to change"),
  /** The `updated` time the edit was based on (as the mirror or Jira wrote it); the mirror's copy when left out. */
  baseUpdated: z.string().min(1).max(64).optional(),
});
export const transitionSchema = z.strictObject({ status: z.string().min(1).max(255) });
export const commentSchema = z.strictObject({ body: z.string().min(1).max(32_000) });

/** Idempotency keys: printable ASCII, as Stripe's and the IETF draft's are. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** How long a retry waits for the first request with its key to finish. */
const IN_FLIGHT_WAIT_MS = 30_000;
/** A first attempt still "pending" after this long died before it wrote down how it went. */
const ABANDONED_AFTER_MS = 5 * 60_000;

/** What a write left: the answer's status and body (the ticket read back is added to it) and the issue it touched. */
type Written = { status: number; idOrKey: string; body: Record<string, unknown>; ticket?: MirroredTicket };

/** A field changed both in Jira and in the push, refused by the policy: both versions. */
export type FieldConflict = { field: string; jira: unknown; autoflow: unknown };
export class TicketConflict extends IntegrationError {
  constructor(
    readonly key: string,
    readonly conflicts: FieldConflict[],
    readonly jiraUpdated: string,
  ) {
    super({
      type: "schema",
      code: ErrorCodes.TICKET_CONFLICT,
      provider: "jira",
      field: `fields.${conflicts[0]?.field ?? ""}`,
      message: `${key} changed in Jira since the edit's base (now updated ${jiraUpdated}): ${conflicts.map((c) => c.field).join(", ")} changed on both sides; nothing was sent`,
    });
  }
}

export type PushAnswer = { status: number; body: Record<string, unknown>; replayed?: boolean };

/** What the push compares and sends, field by field: our name, Jira's field id, the current value, the value to send. */
const FIELD_IDS: Record<keyof PushFields, string> = { summary: "summary", description: "description", labels: "labels", priority: "priority", assignee: "assignee" };

function currentValue(ticket: Ticket, field: keyof PushFields): unknown {
  switch (field) {
    case "summary":
      return ticket.summary;
    case "description":
      return ticket.descriptionText ?? "";
    case "labels":
      return [...ticket.labels].sort();
    case "priority":
      return ticket.priority;
    case "assignee":
      return ticket.assignee?.accountId ?? null;
  }
}
function requested(fields: PushFields, field: keyof PushFields): unknown {
  const value = fields[field];
  if (field === "labels") return [...(value as string[])].sort();
  if (field === "description") return adfToText(textToAdf(value as string));
  return value;
}
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function jiraValue(target: JiraTarget, fields: PushFields, field: keyof PushFields): unknown {
  switch (field) {
    case "description":
      return target.version === "3" ? textToAdf(fields.description as string) : fields.description;
    case "priority":
      return { name: fields.priority };
    case "assignee":
      return fields.assignee === null ? null : target.version === "3" ? { accountId: fields.assignee } : { name: fields.assignee };
    default:
      return fields[field];
  }
}

export function createTicketPush(sync: TicketSync, db: Kysely<Database>) {
  const { contextOf, targetFor, configOf, fieldsOf, mirror, now } = sync.internals;

  /** The connection, its configuration (which must push) and where its calls go. */
  const open = async (userId: string, connectionId: string | undefined) => {
    const ctx = await contextOf(userId, connectionId);
    const config = configOf(await mirror.state(ctx.connection.id));
    if (!config) throw invalidInput("config", "this connection's ticket sync has no configuration yet: PUT /api/integrations/jira/sync/config first", "jira");
    if (config.direction === "pull") throw invalidInput("config.direction", "this connection's sync only pulls (direction pull): set direction push or both to write to Jira", "jira");
    const { target } = await targetFor(ctx, config);
    return { ctx, config, target };
  };


  /** Reads the issue back and applies it to the mirror as AutoFlow's change. */
  const readBack = async (ctx: ActionContext, target: JiraTarget, config: SyncConfig, idOrKey: string): Promise<MirroredTicket> => {
    const issue = await getIssue(ctx, target, idOrKey, fieldsOf(config));
    if (!issue) throw new IntegrationError({ type: "upstream", code: ErrorCodes.ISSUE_VANISHED, provider: "jira", message: `Jira no longer has ${idOrKey} right after writing it` });
    await mirror.apply(ctx.connection.id, [ticketOf(issue)], "autoflow");
    return (await mirror.get(ctx.connection.id, issue.id)) as MirroredTicket;
  };

  /**
   * Runs a write once per idempotency key. The write's answer is kept the
   * moment Jira has taken it ("written", with the issue it touched), before
   * the read-back: a retry then only reads the issue back, whatever failed
   * after the write. A retry that arrives while the first runs waits for it;
   * the same key with another request is refused. A write Jira certainly did
   * not act on (a refusal, a throttle) frees the key; one whose outcome is
   * unknown (the connection broke, a 5xx to a write that may have acted, a
   * first attempt that died) keeps it, and a retry is told rather than
   * writing twice.
   */
  const idempotent = async (connectionId: string, key: string | undefined, request: unknown, write: () => Promise<Written>, finish: (idOrKey: string) => Promise<MirroredTicket>): Promise<PushAnswer> => {
    const complete = async (written: Written): Promise<PushAnswer> => ({ status: written.status, body: { ...written.body, ticket: written.ticket ?? (await finish(written.idOrKey)) } });
    if (key === undefined) return complete(await write());
    if (!IDEMPOTENCY_KEY.test(key)) throw invalidInput("Idempotency-Key", "1 to 255 printable ASCII characters without spaces", "jira");
    const hash = createHash("sha256").update(JSON.stringify(request)).digest("base64url");
    const row = () => db.selectFrom("ticket_idempotency_keys").selectAll().where("connection_id", "=", connectionId).where("idempotency_key", "=", key).executeTakeFirst();
    const set = (values: { state: string; status?: number | null; response?: string | null }) =>
      db.updateTable("ticket_idempotency_keys").set(values).where("connection_id", "=", connectionId).where("idempotency_key", "=", key).execute();
    const done = async (answer: PushAnswer): Promise<PushAnswer> => {
      await set({ state: "done", status: answer.status, response: JSON.stringify(answer.body) });
      return answer;
    };
    const inserted = await db
      .insertInto("ticket_idempotency_keys")
      .values({ connection_id: connectionId, idempotency_key: key, request_hash: hash, state: "pending", status: null, response: null, created_at: new Date(now()).toISOString() })
      .onConflict((oc) => oc.columns(["connection_id", "idempotency_key"]).doNothing())
      .executeTakeFirst();
    if (inserted.numInsertedOrUpdatedRows === 0n) {
      const until = Date.now() + IN_FLIGHT_WAIT_MS;
      for (;;) {
        const held = await row();
        if (!held) return idempotent(connectionId, key, request, write, finish);
        if (held.request_hash !== hash) throw invalidInput("Idempotency-Key", "this key was used with a different request; use a new key for a new request", "jira");
        if (held.state === "done") return { status: held.status ?? 200, body: JSON.parse(held.response ?? "{}") as Record<string, unknown>, replayed: true };
        // Jira took the write; what failed came after it: read the issue back, and answer as the first would have.
        if (held.state === "written") return { ...(await done(await complete(JSON.parse(held.response ?? "{}") as Written))), replayed: true };
        const abandoned = held.state === "pending" && now() - Date.parse(held.created_at) > ABANDONED_AFTER_MS;
        if (held.state === "unknown" || abandoned || Date.now() >= until) {
          throw new IntegrationError({
            type: "upstream",
            code: ErrorCodes.IDEMPOTENCY_OUTCOME_UNKNOWN,
            provider: "jira",
            message: `the first request with this Idempotency-Key ${held.state === "pending" && !abandoned ? "is still running" : "may or may not have reached Jira"}; check the mirror (GET /api/integrations/jira/tickets) before writing again`,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    let written: Written;
    try {
      written = await write();
    } catch (error) {
      // A refusal or a throttle of the write itself: Jira did not act, the key is free again. Anything else may have acted.
      const refused = error instanceof IntegrationError && (error.type === "schema" || error.type === "auth" || error.type === "rate-limit");
      if (refused) await db.deleteFrom("ticket_idempotency_keys").where("connection_id", "=", connectionId).where("idempotency_key", "=", key).execute();
      else await set({ state: "unknown" });
      throw error;
    }
    await set({ state: "written", response: JSON.stringify({ ...written, ticket: undefined }) });
    return done(await complete(written));
  };

  return {
    async create(userId: string, input: unknown, options: { connectionId?: string; idempotencyKey?: string } = {}): Promise<PushAnswer> {
      const fields = parseBody(createTicketSchema, input);
      const { ctx, config, target } = await open(userId, options.connectionId);
      const project = fields.project ?? (config.projects?.length === 1 ? config.projects[0] : undefined);
      if (!project) throw invalidInput("project", "name the project: this sync covers more than one", "jira");
      if (config.projects && !config.projects.includes(project)) throw invalidInput("project", `${project} is outside this sync's projects (${config.projects.join(", ")})`, "jira");
      return idempotent(ctx.connection.id, options.idempotencyKey, { op: "create", fields }, async () => {
        const body: Record<string, unknown> = { project: { key: project }, issuetype: { name: fields.issueType }, summary: fields.summary };
        for (const field of ["description", "labels", "priority", "assignee"] as const) if (fields[field] !== undefined) body[FIELD_IDS[field]] = jiraValue(target, fields, field);
        const created = await ctx.read({ operation: "POST /issue", method: "POST", ...path(target, "/issue"), json: { fields: body } }, z.looseObject({ id: z.string(), key: z.string() }));
        return { status: 201, idOrKey: created.id, body: {} };
      }, (idOrKey) => readBack(ctx, target, config, idOrKey));
    },

    async update(userId: string, key: string, input: unknown, options: { connectionId?: string; idempotencyKey?: string } = {}): Promise<PushAnswer> {
      const { fields, baseUpdated } = parseBody(updateTicketSchema, input);
      const { ctx, config, target } = await open(userId, options.connectionId);
      const mirrored = await mirror.get(ctx.connection.id, key);
      if (!mirrored || mirrored.deletedAt) throw new IntegrationError({ type: "schema", code: ErrorCodes.TICKET_NOT_FOUND, field: "key", provider: "jira", message: `no ticket ${key} in this connection's mirror` });
      const baseMs = baseUpdated === undefined ? mirrored.updatedMs : (parseJiraTime(baseUpdated) ?? Date.parse(baseUpdated));
      if (!Number.isFinite(baseMs)) throw invalidInput("baseUpdated", "a time as Jira writes it (2024-01-01T10:00:00.000+0000) or ISO 8601", "jira");
      return idempotent(ctx.connection.id, options.idempotencyKey, { op: "update", key, fields, baseUpdated }, async () => {
        const issue = await getIssue(ctx, target, mirrored.id, fieldsOf(config));
        if (!issue) {
          await mirror.markDeleted(ctx.connection.id, [mirrored.id], "jira");
          throw new IntegrationError({ type: "schema", code: ErrorCodes.TICKET_NOT_FOUND, field: "key", provider: "jira", message: `${key} was deleted in Jira; the mirror now says so` });
        }
        const current = ticketOf(issue);
        const changedInJira = current.updatedMs > baseMs ? await fieldsChangedSince(ctx, target, mirrored.id, baseMs, parseJiraTime) : new Set<string>();
        const send: Record<string, unknown> = {};
        const kept: string[] = [];
        const conflicts: FieldConflict[] = [];
        for (const field of Object.keys(fields) as (keyof PushFields)[]) {
          if (same(currentValue(current, field), requested(fields, field))) continue;
          if (changedInJira.has(FIELD_IDS[field])) {
            const policy = policyFor(config, field);
            if (policy === "reject") {
              conflicts.push({ field, jira: currentValue(current, field), autoflow: fields[field] });
              continue;
            }
            if (policy === "jira") {
              kept.push(field);
              continue;
            }
          }
          send[FIELD_IDS[field]] = jiraValue(target, fields, field);
        }
        if (conflicts.length > 0) {
          // Jira's version lands in the mirror, so the caller can merge from it.
          await mirror.apply(ctx.connection.id, [current], "jira");
          throw new TicketConflict(key, conflicts, current.updated);
        }
        const body = { sent: Object.keys(send).sort(), kept };
        if (Object.keys(send).length === 0) {
          // Nothing differs from Jira's copy: nothing is sent, and the mirror catches up with what Jira holds.
          await mirror.apply(ctx.connection.id, [current], "jira");
          return { status: 200, idOrKey: mirrored.id, body, ticket: (await mirror.get(ctx.connection.id, mirrored.id)) as MirroredTicket };
        }
        await ctx.call({ operation: "PUT /issue", method: "PUT", ...path(target, `/issue/${encodeURIComponent(mirrored.id)}`), json: { fields: send }, expectJson: false });
        return { status: 200, idOrKey: mirrored.id, body };
      }, (idOrKey) => readBack(ctx, target, config, idOrKey));
    },

    async transition(userId: string, key: string, input: unknown, options: { connectionId?: string; idempotencyKey?: string } = {}): Promise<PushAnswer> {
      const { status } = parseBody(transitionSchema, input);
      const { ctx, config, target } = await open(userId, options.connectionId);
      return idempotent(ctx.connection.id, options.idempotencyKey, { op: "transition", key, status }, async () => {
        const list = await ctx.read(
          { method: "GET", ...path(target, `/issue/${encodeURIComponent(key)}/transitions`) },
          z.looseObject({ transitions: z.array(z.looseObject({ id: z.string(), name: z.string(), to: z.looseObject({ name: z.string() }).optional() })) }),
        );
        const wanted = status.toLowerCase();
        const chosen = list.transitions.find((t) => t.to?.name.toLowerCase() === wanted) ?? list.transitions.find((t) => t.name.toLowerCase() === wanted);
        if (!chosen) {
          const names = list.transitions.map((t) => t.to?.name ?? t.name).join(", ") || "none";
          throw invalidInput("status", `${key} cannot move to ${JSON.stringify(status)} from where it is; its transitions lead to: ${names}`, "jira");
        }
        await ctx.call({ operation: "POST /transitions", method: "POST", ...path(target, `/issue/${encodeURIComponent(key)}/transitions`), json: { transition: { id: chosen.id } }, expectJson: false });
        return { status: 200, idOrKey: key, body: {} };
      }, (idOrKey) => readBack(ctx, target, config, idOrKey));
    },

    async comment(userId: string, key: string, input: unknown, options: { connectionId?: string; idempotencyKey?: string } = {}): Promise<PushAnswer> {
      const { body } = parseBody(commentSchema, input);
      const { ctx, config, target } = await open(userId, options.connectionId);
      return idempotent(ctx.connection.id, options.idempotencyKey, { op: "comment", key, body }, async () => {
        const comment = await ctx.read(
          { operation: "POST /comment", method: "POST", ...path(target, `/issue/${encodeURIComponent(key)}/comment`), json: { body: target.version === "3" ? textToAdf(body) : body } },
          z.looseObject({ id: z.string(), created: z.string().optional() }),
        );
        return { status: 201, idOrKey: key, body: { comment: { id: comment.id, ...(comment.created ? { created: comment.created } : {}) } } };
      }, (idOrKey) => readBack(ctx, target, config, idOrKey));
    },
  };
}

export type TicketPush = ReturnType<typeof createTicketPush>;

/** A request body checked against its schema: a 400 naming the first wrong field. */
function parseBody<T>(schema: z.ZodType<T>, input: unknown): T {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.code === "unrecognized_keys" ? (issue.keys[0] ?? "body") : (issue?.path ?? []).map(String).join(".") || "body";
  throw invalidInput(field, issue?.code === "unrecognized_keys" ? `unknown field ${JSON.stringify(field)}` : (issue?.message ?? "invalid"), "jira");
}
