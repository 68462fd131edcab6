/**
 * The Jira ticket mirror in the service's database: each connection's copy
 * of its issues, the change feed, and the sync's own state.
 *
 * A change is applied once: an issue is written only when its `updated` is
 * newer than the mirror's (the de-duplication by `(id, updated)` that lets a
 * cursor overlap), and every applied change is one event. A page of changes
 * and the progress of the run that read it commit together, so a process
 * killed mid-page applies that page again from the start, or not at all.
 */
import { CompiledQuery, sql, type Insertable, type Kysely, type Selectable, type Transaction } from "kysely";
import type { AdfNode } from "../integrations/jira/sync/adf.js";
import { changedFields, type Ticket, type TicketAssignee } from "../integrations/jira/sync/ticket.js";
import type { Database, TicketsTable } from "./schema.js";

export type TicketOrigin = "jira" | "autoflow" | "webhook";
export type TicketEventKind = "created" | "updated" | "deleted";

export type TicketEvent = {
  seq: number;
  issueId: string;
  key: string;
  kind: TicketEventKind;
  origin: TicketOrigin;
  changedFields: string[];
  updated: string | null;
  at: string;
};

export type MirroredTicket = Ticket & { deletedAt: string | null; mirroredAt: string };

/** What applying a batch did: how many issues each way, and the events it wrote. */
export type ApplyOutcome = { created: number; updated: number; unchanged: number; stale: number; events: TicketEvent[] };

/** The sync's own record of a connection (JSON columns read back). */
export type TicketSyncState = {
  connectionId: string;
  userId: string | null;
  config: unknown;
  cursorMs: number | null;
  /** What the cursor was read over; a cursor is good only for the same. */
  cursorScope: string | null;
  timeZone: string | null;
  run: unknown;
  lastRun: unknown;
  webhooks: unknown;
  lastDeleteScanAt: string | null;
};
export type TicketSyncStatePatch = Partial<{ [K in Exclude<keyof TicketSyncState, "connectionId">]: TicketSyncState[K] }>;

export type TicketFilter = {
  project?: string;
  status?: string;
  assigneeAccountId?: string;
  label?: string;
  includeDeleted?: boolean;
  /** Continue after this ticket of the order (updated, id). */
  after?: { updatedMs: number; id: string };
  limit: number;
};

const json = (value: unknown): string => JSON.stringify(value);
/** How many insert statements (by table, columns and rows) a mirror keeps compiled. */
const INSERT_SQL_KEPT = 32;
/** Whether a text column holds `text`, exactly (no wildcards, case kept). */
const contains = (column: "labels" | "assignee", text: string) => sql<boolean>`replace(${sql.ref(column)}, ${text}, '') <> ${sql.ref(column)}`;
const parsed = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

function rowOf(connectionId: string, t: Ticket, now: string): Insertable<TicketsTable> {
  return {
    connection_id: connectionId,
    issue_id: t.id,
    issue_key: t.key,
    project: t.project,
    summary: t.summary,
    status: t.status,
    assignee: t.assignee ? json(t.assignee) : null,
    priority: t.priority,
    labels: json(t.labels),
    description_text: t.descriptionText,
    description_adf: t.descriptionAdf ? json(t.descriptionAdf) : null,
    created: t.created,
    updated: t.updated,
    updated_ms: t.updatedMs,
    fields: json(t.fields),
    deleted_at: null,
    mirrored_at: now,
  };
}

function ticketOfRow(row: Selectable<TicketsTable>): MirroredTicket {
  return {
    id: row.issue_id,
    key: row.issue_key,
    project: row.project,
    summary: row.summary,
    status: row.status,
    assignee: parsed(row.assignee) as TicketAssignee | null,
    priority: row.priority,
    labels: parsed(row.labels) as string[],
    descriptionText: row.description_text,
    descriptionAdf: parsed(row.description_adf) as AdfNode | null,
    created: row.created,
    updated: row.updated,
    updatedMs: Number(row.updated_ms),
    fields: parsed(row.fields) as Record<string, unknown>,
    deletedAt: row.deleted_at,
    mirroredAt: row.mirrored_at,
  };
}

function stateOfRow(row: Selectable<Database["ticket_sync_states"]>): TicketSyncState {
  return {
    connectionId: row.connection_id,
    userId: row.user_id,
    config: parsed(row.config),
    cursorMs: row.cursor_ms === null ? null : Number(row.cursor_ms),
    cursorScope: row.cursor_scope,
    timeZone: row.time_zone,
    run: parsed(row.run),
    lastRun: parsed(row.last_run),
    webhooks: parsed(row.webhooks),
    lastDeleteScanAt: row.last_delete_scan_at,
  };
}

export class SqlTicketMirror {
  /** The SQL of the multi-row inserts made so far, by table, columns and number of rows (see insertRows). */
  private readonly insertSql = new Map<string, string>();

  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Applies changed issues (and, in the same transaction, the sync state
   * `progress` names): a new issue is created, a newer `updated` updates,
   * the same or an older one is left as it is. A deleted issue that comes
   * back (moved into scope again) is live again.
   */
  async apply(
    connectionId: string,
    tickets: readonly Ticket[],
    origin: TicketOrigin,
    progress?: TicketSyncStatePatch | ((outcome: ApplyOutcome) => TicketSyncStatePatch),
    options: { refresh?: boolean } = {},
  ): Promise<ApplyOutcome> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockConnection(tx, connectionId);
      const outcome: ApplyOutcome = { created: 0, updated: 0, unchanged: 0, stale: 0, events: [] };
      const now = new Date().toISOString();
      const pending: Array<Omit<TicketEvent, "seq">> = [];
      // The newest answer of each issue in the batch (a page may hold an issue twice while it changes).
      const newest = new Map<string, Ticket>();
      for (const t of tickets) {
        const seen = newest.get(t.id);
        if (!seen || t.updatedMs > seen.updatedMs) newest.set(t.id, t);
      }
      const ids = [...newest.keys()];
      const existing = new Map<string, Selectable<TicketsTable>>();
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await tx.selectFrom("tickets").selectAll().where("connection_id", "=", connectionId).where("issue_id", "in", ids.slice(i, i + 500)).execute();
        for (const row of rows) existing.set(row.issue_id, row);
      }
      // New issues are written a hundred rows a statement (a statement each made the pull of a new project mostly SQL overhead).
      const inserts: Insertable<TicketsTable>[] = [];
      for (const t of newest.values()) {
        const before = existing.get(t.id);
        if (!before) {
          inserts.push(rowOf(connectionId, t, now));
          outcome.created += 1;
          pending.push({ issueId: t.id, key: t.key, kind: "created", origin, changedFields: Object.keys(t.fields).filter((k) => k !== "updated").sort(), updated: t.updated, at: now });
          continue;
        }
        const beforeMs = Number(before.updated_ms);
        if (t.updatedMs < beforeMs) {
          outcome.stale += 1;
          continue;
        }
        const changed = changedFields(parsed(before.fields) as Record<string, unknown>, t.fields);
        // The same version again (an overlap, a lagging search still showing a deleted issue): nothing to apply,
        // unless a refresh brings fields the mirror did not read before (the configuration named more).
        if (t.updatedMs === beforeMs && !(options.refresh && before.deleted_at === null && changed.length > 0)) {
          outcome.unchanged += 1;
          continue;
        }
        await tx.updateTable("tickets").set(rowOf(connectionId, t, now)).where("connection_id", "=", connectionId).where("issue_id", "=", t.id).where("updated_ms", "<=", t.updatedMs).execute();
        outcome.updated += 1;
        pending.push({ issueId: t.id, key: t.key, kind: "updated", origin, changedFields: changed, updated: t.updated, at: now });
      }
      for (let i = 0; i < inserts.length; i += 100) await this.insertRows(tx, "tickets", inserts.slice(i, i + 100));
      outcome.events = await this.appendEvents(tx, connectionId, pending);
      if (progress) await this.patchState(tx, connectionId, typeof progress === "function" ? progress(outcome) : progress);
      return outcome;
    });
  }

  /** Marks issues gone from Jira as deleted (once each), with an event each; answers the events. */
  async markDeleted(connectionId: string, issueIds: readonly string[], origin: TicketOrigin, progress?: TicketSyncStatePatch): Promise<TicketEvent[]> {
    return this.db.transaction().execute(async (tx) => {
      await this.lockConnection(tx, connectionId);
      const now = new Date().toISOString();
      const pending: Array<Omit<TicketEvent, "seq">> = [];
      for (let i = 0; i < issueIds.length; i += 500) {
        const rows = await tx
          .selectFrom("tickets")
          .select(["issue_id", "issue_key", "updated"])
          .where("connection_id", "=", connectionId)
          .where("issue_id", "in", issueIds.slice(i, i + 500))
          .where("deleted_at", "is", null)
          .execute();
        for (const row of rows) {
          await tx.updateTable("tickets").set({ deleted_at: now }).where("connection_id", "=", connectionId).where("issue_id", "=", row.issue_id).execute();
          pending.push({ issueId: row.issue_id, key: row.issue_key, kind: "deleted", origin, changedFields: [], updated: row.updated, at: now });
        }
      }
      const events = await this.appendEvents(tx, connectionId, pending);
      if (progress) await this.patchState(tx, connectionId, progress);
      return events;
    });
  }

  /** The ids of the live (not deleted) issues of a connection, for the delete scan. */
  async liveIds(connectionId: string, projects?: readonly string[]): Promise<string[]> {
    let query = this.db.selectFrom("tickets").select("issue_id").where("connection_id", "=", connectionId).where("deleted_at", "is", null);
    if (projects && projects.length > 0) query = query.where("project", "in", [...projects]);
    return (await query.execute()).map((r) => r.issue_id);
  }

  /** One ticket by id or key; deleted ones included. */
  async get(connectionId: string, idOrKey: string): Promise<MirroredTicket | undefined> {
    const row = await this.db
      .selectFrom("tickets")
      .selectAll()
      .where("connection_id", "=", connectionId)
      .where((eb) => eb.or([eb("issue_id", "=", idOrKey), eb("issue_key", "=", idOrKey)]))
      .orderBy("mirrored_at", "desc")
      .executeTakeFirst();
    return row ? ticketOfRow(row) : undefined;
  }

  /** Tickets in the order (updated, id), filtered, after a position of that order. */
  async list(connectionId: string, filter: TicketFilter): Promise<MirroredTicket[]> {
    let query = this.db.selectFrom("tickets").selectAll().where("connection_id", "=", connectionId);
    if (!filter.includeDeleted) query = query.where("deleted_at", "is", null);
    if (filter.project !== undefined) query = query.where("project", "=", filter.project);
    if (filter.status !== undefined) query = query.where("status", "=", filter.status);
    // JSON columns matched by their exact serialization (`"label"` is an element of the array only as itself),
    // with replace(), which is case-sensitive on both databases where LIKE is not on SQLite.
    if (filter.assigneeAccountId !== undefined) query = query.where(contains("assignee", `"accountId":${JSON.stringify(filter.assigneeAccountId)}`));
    if (filter.label !== undefined) query = query.where(contains("labels", JSON.stringify(filter.label)));
    if (filter.after) {
      const { updatedMs, id } = filter.after;
      query = query.where((eb) => eb.or([eb("updated_ms", ">", updatedMs), eb.and([eb("updated_ms", "=", updatedMs), eb("issue_id", ">", id)])]));
    }
    const rows = await query.orderBy("updated_ms").orderBy("issue_id").limit(filter.limit).execute();
    return rows.map(ticketOfRow);
  }

  /** The change feed after `afterSeq`, oldest first. */
  async events(connectionId: string, afterSeq: number, limit: number): Promise<TicketEvent[]> {
    const rows = await this.db.selectFrom("ticket_events").selectAll().where("connection_id", "=", connectionId).where("seq", ">", afterSeq).orderBy("seq").limit(limit).execute();
    return rows.map((r) => ({
      seq: Number(r.seq),
      issueId: r.issue_id,
      key: r.issue_key,
      kind: r.kind as TicketEventKind,
      origin: r.origin as TicketOrigin,
      changedFields: JSON.parse(r.changed_fields) as string[],
      updated: r.updated,
      at: r.at,
    }));
  }

  async state(connectionId: string): Promise<TicketSyncState | undefined> {
    const row = await this.db.selectFrom("ticket_sync_states").selectAll().where("connection_id", "=", connectionId).executeTakeFirst();
    if (!row) return undefined;
    return stateOfRow(row);
  }

  /** Every connection whose sync has a configuration, for the scheduler. */
  async configured(): Promise<TicketSyncState[]> {
    const rows = await this.db.selectFrom("ticket_sync_states").selectAll().where("config", "is not", null).orderBy("connection_id").execute();
    return rows.map(stateOfRow);
  }

  async saveState(connectionId: string, patch: TicketSyncStatePatch): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await this.ensureState(tx, connectionId);
      await this.patchState(tx, connectionId, patch);
    });
  }

  /**
   * Takes the connection's run lease for `owner` until `untilMs` (epoch ms) when it is free, lapsed or
   * already `owner`'s: one run at a time across instances. False when another holds it. `replacing`
   * names a holder known to be gone, whose lease is taken as if it had lapsed (and only while it holds it).
   */
  async takeLease(connectionId: string, owner: string, nowMs: number, untilMs: number, replacing?: string): Promise<boolean> {
    const take = () =>
      this.db
        .updateTable("ticket_sync_states")
        .set({ lease_owner: owner, lease_until: untilMs })
        .where("connection_id", "=", connectionId)
        .where((eb) =>
          eb.or([eb("lease_owner", "is", null), eb("lease_owner", "=", owner), eb("lease_until", "<", nowMs), ...(replacing === undefined ? [] : [eb("lease_owner", "=", replacing)])]),
        )
        .executeTakeFirst();
    // One statement per renewal (each page of a run renews); the state row is made only when there is none yet.
    if ((await take()).numUpdatedRows > 0n) return true;
    if (await this.state(connectionId)) return false;
    await this.db.transaction().execute((tx) => this.ensureState(tx, connectionId));
    return (await take()).numUpdatedRows > 0n;
  }

  /** Who holds the connection's run lease (lapsed or not), if anyone. */
  async leaseHolder(connectionId: string): Promise<string | null> {
    const row = await this.db.selectFrom("ticket_sync_states").select("lease_owner").where("connection_id", "=", connectionId).executeTakeFirst();
    return row?.lease_owner ?? null;
  }

  async releaseLease(connectionId: string, owner: string): Promise<void> {
    await this.db.updateTable("ticket_sync_states").set({ lease_owner: null, lease_until: null }).where("connection_id", "=", connectionId).where("lease_owner", "=", owner).execute();
  }

  /** The ids of issues `origin` changed since `sinceIso`, newest first (a pull names AutoFlow's recent writes to a lagging search). */
  async recentlyChanged(connectionId: string, origin: TicketOrigin, sinceIso: string, limit: number): Promise<string[]> {
    const rows = await this.db
      .selectFrom("ticket_events")
      .select("issue_id")
      .where("connection_id", "=", connectionId)
      .where("origin", "=", origin)
      .where("at", ">=", sinceIso)
      .orderBy("seq", "desc")
      .limit(limit * 4)
      .execute();
    return [...new Set(rows.map((r) => r.issue_id))].slice(0, limit);
  }

  /** Removes a connection's mirror, feed and state (its disconnect). */
  async forget(connectionId: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      for (const table of ["tickets", "ticket_events", "ticket_sync_states", "ticket_webhook_deliveries", "ticket_idempotency_keys"] as const) {
        await tx.deleteFrom(table).where("connection_id", "=", connectionId).execute();
      }
    });
  }

  /**
   * Serializes the writers of one connection's mirror (a pull page, a webhook, a push's read-back): the state
   * row's lock is taken before any ticket is read, so two of them never both read an issue as absent or as
   * the older version. (SQLite has one writer at a time anyway.)
   */
  private async lockConnection(tx: Transaction<Database>, connectionId: string): Promise<void> {
    await this.ensureState(tx, connectionId);
    await tx.updateTable("ticket_sync_states").set({ updated_at: new Date().toISOString() }).where("connection_id", "=", connectionId).execute();
  }

  private async ensureState(tx: Transaction<Database>, connectionId: string): Promise<void> {
    await tx
      .insertInto("ticket_sync_states")
      .values({ connection_id: connectionId, user_id: null, config: null, cursor_ms: null, cursor_scope: null, time_zone: null, run: null, last_run: null, webhooks: null, last_delete_scan_at: null, updated_at: new Date().toISOString() })
      .onConflict((oc) => oc.column("connection_id").doNothing())
      .execute();
  }

  private async patchState(tx: Transaction<Database>, connectionId: string, patch: TicketSyncStatePatch): Promise<void> {
    const set: Record<string, unknown> = { updated_at: new Date().toISOString() };
    if ("userId" in patch) set.user_id = patch.userId ?? null;
    if ("config" in patch) set.config = patch.config === null || patch.config === undefined ? null : json(patch.config);
    if ("cursorMs" in patch) set.cursor_ms = patch.cursorMs ?? null;
    if ("cursorScope" in patch) set.cursor_scope = patch.cursorScope ?? null;
    if ("timeZone" in patch) set.time_zone = patch.timeZone ?? null;
    if ("run" in patch) set.run = patch.run === null || patch.run === undefined ? null : json(patch.run);
    if ("lastRun" in patch) set.last_run = patch.lastRun === null || patch.lastRun === undefined ? null : json(patch.lastRun);
    if ("webhooks" in patch) set.webhooks = patch.webhooks === null || patch.webhooks === undefined ? null : json(patch.webhooks);
    if ("lastDeleteScanAt" in patch) set.last_delete_scan_at = patch.lastDeleteScanAt ?? null;
    await tx.updateTable("ticket_sync_states").set(set).where("connection_id", "=", connectionId).execute();
  }

  /** Numbers events from the state row's counter, taken under its row lock (PostgreSQL) or the one writer (SQLite). */
  private async appendEvents(tx: Transaction<Database>, connectionId: string, pending: ReadonlyArray<Omit<TicketEvent, "seq">>): Promise<TicketEvent[]> {
    if (pending.length === 0) return [];
    const row = await tx
      .updateTable("ticket_sync_states")
      .set({ next_event_seq: sql<number>`next_event_seq + ${pending.length}` })
      .where("connection_id", "=", connectionId)
      .returning("next_event_seq")
      .executeTakeFirstOrThrow();
    const first = Number(row.next_event_seq) - pending.length;
    const events = pending.map((e, i) => ({ ...e, seq: first + i }));
    for (let i = 0; i < events.length; i += 200) {
      await this.insertRows(
        tx,
        "ticket_events",
        events.slice(i, i + 200).map((e) => ({
          connection_id: connectionId,
          seq: e.seq,
          issue_id: e.issueId,
          issue_key: e.key,
          kind: e.kind,
          origin: e.origin,
          changed_fields: json(e.changedFields),
          updated: e.updated,
          at: e.at,
        })),
      );
    }
    return events;
  }

  /**
   * One multi-row insert. Kysely builds and compiles a statement of a hundred rows value by value, which cost a
   * pull as much as SQLite's own work on it: its SQL depends only on the table, the columns and the number of
   * rows, so it is compiled once for each and reused with the rows' values as its parameters. It is kept only
   * when Kysely's parameters were exactly those values in that order, and rows of other shapes go through Kysely.
   */
  private async insertRows<T extends "tickets" | "ticket_events">(tx: Transaction<Database>, table: T, rows: readonly Insertable<Database[T]>[]): Promise<void> {
    const first = rows[0];
    if (!first) return;
    const columns = Object.keys(first);
    const parameters: unknown[] = [];
    let uniform = true;
    for (const row of rows) {
      const values = row as Record<string, unknown>;
      if (Object.keys(values).length !== columns.length) uniform = false;
      for (const column of columns) {
        const value = values[column];
        if (value === undefined) uniform = false;
        parameters.push(value);
      }
    }
    const key = `${table}(${columns.join(",")})x${rows.length}`;
    const known = uniform ? this.insertSql.get(key) : undefined;
    if (known !== undefined) {
      await tx.executeQuery(CompiledQuery.raw(known, parameters));
      return;
    }
    const compiled = tx.insertInto(table).values(rows as Insertable<Database[T]>[]).compile();
    if (uniform && compiled.parameters.length === parameters.length && compiled.parameters.every((p, i) => p === parameters[i])) {
      // A few shapes at most: a full page, a webhook's one row, a page's remainder; the oldest is dropped past that.
      if (this.insertSql.size >= INSERT_SQL_KEPT) this.insertSql.delete(this.insertSql.keys().next().value as string);
      this.insertSql.set(key, compiled.sql);
    }
    await tx.executeQuery(compiled);
  }
}
