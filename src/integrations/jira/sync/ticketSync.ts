/**
 * The Jira ticket sync of one service: configuration per connection, pull
 * runs into the ticket mirror, the delete scan, and what the routes read
 * back (status, tickets, the change feed).
 *
 * A pull reads the configured scope with the enhanced search, ordered by
 * `updated`, from the cursor less the overlap written in the account's time
 * zone; each page is applied and the run's position committed in one
 * transaction, so a run that dies resumes from its last committed page and
 * nothing is applied twice (the mirror takes a change once by `(id,
 * updated)`). The cursor moves only when a run reaches its last page. Every
 * call goes through the connection's session: refreshed, paced, retried
 * within the Jira budget, classified; an auth error stops the run and the
 * session marks the connection's health down.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { missingScope, type ActionContext } from "../../shared/action.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../../shared/errors.js";
import type { ConnectorLifecycle } from "../../shared/lifecycle.js";
import { isGoneProcess, processTag } from "../../../store/leaseHolder.js";
import type { ApplyOutcome, SqlTicketMirror, TicketEvent, TicketFilter, TicketSyncState } from "../../../store/ticketMirror.js";
import { scopeJql, syncConfigSchema, type SyncConfig } from "./config.js";
import { accessibleSites, accountTimeZone, getIssue, searchPage, type JiraSite, type JiraTarget, type SearchPage } from "./jiraApi.js";
import { cursorLiteral, updatedSince } from "./jqlDate.js";
import { MIRRORED_FIELDS, ticketOf, type Ticket } from "./ticket.js";
import { createTicketWebhooks, type TicketWebhookOptions, type WebhookState } from "./webhooks.js";

/** Issues per search page: Jira's most for named fields. */
export const PAGE_SIZE = 100;
/** Ids per page of the delete scan: Jira allows up to 5,000 when only ids are asked for. */
const ID_PAGE_SIZE = 5000;
/** How far back AutoFlow's own writes are named to the search (reconcileIssues), past any search lag seen. */
const RECONCILE_WINDOW_MS = 10 * 60_000;
/** How long a run's lease lasts without renewal (each page renews it): a dead instance's run is taken over after it. */
const LEASE_MS = 2 * 60_000;
/** How long the sites a grant reaches are taken as read (a site dropped from the grant meanwhile fails its calls anyway). */
const SITES_TTL_MS = 5 * 60_000;
const MINUTE_MS = 60_000;
/**
 * Turns of the event loop a search read ahead is given before the page before it is written: undici creates the
 * request in the first and writes it (its JSON body is a stream) in the second. Fewer only loses the overlap.
 */
const SEND_TURNS = 2;

export type RunCounts = { pages: number; created: number; updated: number; unchanged: number; stale: number; deleted: number; unreadable: number };
export type RunRecord = {
  trigger: "manual" | "schedule";
  startedAt: string;
  finishedAt?: string;
  counts: RunCounts;
  deleteScan: boolean;
  error?: string;
  errorType?: string;
};

/** A run in progress, as committed with its last page: enough to resume it. */
const progressSchema = z.strictObject({
  scope: z.string(),
  jql: z.string(),
  next: z.string().optional(),
  startedAt: z.string(),
  maxUpdatedMs: z.number().nullable(),
  counts: z.strictObject({ pages: z.number(), created: z.number(), updated: z.number(), unchanged: z.number(), stale: z.number(), deleted: z.number(), unreadable: z.number().default(0) }),
});
type Progress = z.infer<typeof progressSchema>;

/** A page being read: the lease renewal before it, then the page (`restarted` when it was read from the cursor again). */
type PageRead = { renewed: Promise<void>; page: Promise<{ page: SearchPage; restarted: boolean }> };

const zeroCounts = (): RunCounts => ({ pages: 0, created: 0, updated: 0, unchanged: 0, stale: 0, deleted: 0, unreadable: 0 });

export type TicketSyncDeps = {
  jira: ConnectorLifecycle;
  mirror: SqlTicketMirror;
  /** The Atlassian API origin (accessible-resources and the gateway). */
  apiUrl: string;
  now?: () => number;
  /** Where Jira delivers webhooks and how admin ones are checked (webhooks.ts); none are registered without. */
  webhooks?: TicketWebhookOptions;
  /** Told of every finished run, succeeded or failed (metrics). */
  onRun?: (record: RunRecord) => void;
};

export type SyncStatus = {
  connectionId: string;
  config: SyncConfig | null;
  cursor: { updatedMs: number; updated: string; jqlFrom: string | null; timeZone: string | null } | null;
  running: boolean;
  /** Where an interrupted run resumes. */
  resumeFrom: { jql: string; pagesDone: number } | null;
  lastRun: RunRecord | null;
  lastDeleteScanAt: string | null;
  /** The dynamic webhook registration (ids, site, expiry), or what to set up for an admin webhook. */
  webhooks: WebhookState | null;
};

export function createTicketSync(deps: TicketSyncDeps) {
  const now = deps.now ?? (() => Date.now());
  const { mirror } = deps;
  /** One run per connection at a time in this process; a second request joins the first. */
  const running = new Map<string, Promise<RunRecord>>();
  /** This instance, as the holder of run leases (one run per connection across instances). */
  const leaseOwner = `${processTag}${randomBytes(9).toString("base64url")}`;
  const renew = async (connectionId: string): Promise<void> => {
    if (await mirror.takeLease(connectionId, leaseOwner, now(), now() + LEASE_MS)) return;
    // A process of this machine that died holding it (kill -9, a crash) runs nothing: its lease is not waited out.
    const holder = await mirror.leaseHolder(connectionId);
    if (holder !== null && isGoneProcess(holder) && (await mirror.takeLease(connectionId, leaseOwner, now(), now() + LEASE_MS, holder))) return;
    throw syncRunning();
  };

  const contextOf = (userId: string, connectionId: string | undefined) => deps.jira.contextFor(userId, "ticket sync", connectionId ? { connectionId } : {});

  const configOf = (state: TicketSyncState | undefined): SyncConfig | null => {
    if (!state?.config) return null;
    const parsed = syncConfigSchema.safeParse(state.config);
    return parsed.success ? parsed.data : null;
  };

  /** Where the connection's calls go for this configuration; for OAuth, the configured site of the grant's. */
  /** The sites each grant reaches, as read lately: a run, a push and a webhook delivery need not each ask again. */
  const sitesRead = new Map<string, { sites: JiraSite[]; atMs: number }>();
  const sitesOf = async (ctx: ActionContext, fresh: boolean): Promise<JiraSite[]> => {
    const known = sitesRead.get(ctx.connection.id);
    if (!fresh && known && now() - known.atMs < SITES_TTL_MS) return known.sites;
    const sites = await accessibleSites(ctx, deps.apiUrl);
    sitesRead.set(ctx.connection.id, { sites, atMs: now() });
    return sites;
  };
  /** `fresh`: ask Jira now (a configuration being stored), not what was read in the last minutes. */
  const targetFor = async (ctx: ActionContext, config: Pick<SyncConfig, "site">, fresh = false): Promise<{ target: JiraTarget; sites: JiraSite[] }> => {
    const { authMethod } = ctx.connection;
    if (authMethod === "personal_access_token") return { target: { version: "2" }, sites: [] };
    if (authMethod !== "oauth2") return { target: { version: "3" }, sites: [] };
    const sites = await sitesOf(ctx, fresh);
    const chosen = config.site === undefined ? (sites.length === 1 ? sites[0] : undefined) : sites.find((s) => s.id === config.site || s.url.replace(/\/+$/, "") === config.site?.replace(/\/+$/, ""));
    if (!chosen) {
      const listed = sites.map((s) => `${s.id} (${s.url})`).join(", ") || "none";
      throw invalidInput(
        "site",
        config.site === undefined ? `this grant reaches ${sites.length} Jira sites; choose one: ${listed}` : `${JSON.stringify(config.site)} is not a Jira site this grant reaches: ${listed}`,
        "jira",
      );
    }
    return { target: { version: "3", base: `${deps.apiUrl}/ex/jira/${encodeURIComponent(chosen.id)}` }, sites };
  };

  const fieldsOf = (config: SyncConfig): string[] => [...new Set([...MIRRORED_FIELDS, ...config.fields])];
  /** What a cursor is read over: the site, the scope and the fields. */
  const scopeKeyOf = (config: SyncConfig): string => JSON.stringify({ site: config.site ?? null, scope: scopeJql(config), fields: fieldsOf(config) });

  /** Reads changed issues from the cursor (or resumes the interrupted run), committing page by page. */
  const pull = async (ctx: ActionContext, target: JiraTarget, config: SyncConfig, state: TicketSyncState | undefined, counts: RunCounts, startedAt: string): Promise<void> => {
    const connectionId = ctx.connection.id;
    const timeZone = await accountTimeZone(ctx, target);
    const scope = scopeJql(config);
    // The cursor is good only for what it was read over: another site, scope or set of fields starts afresh.
    const scopeKey = scopeKeyOf(config);
    const cursorMs = state?.cursorScope === scopeKey ? state.cursorMs : null;
    // A pull from no cursor also fills in fields the mirror did not read before, for issues Jira did not change.
    const refresh = cursorMs === null;
    const fresh = (): Progress => ({
      scope: scopeKey,
      jql: `${scope}${cursorMs != null ? ` AND ${updatedSince(cursorMs, timeZone, config.overlapSeconds * 1000)}` : ""} ORDER BY updated ASC, key ASC`,
      startedAt,
      maxUpdatedMs: null,
      counts: zeroCounts(),
    });
    const saved = progressSchema.safeParse(state?.run);
    // An interrupted run of the same scope resumes where its last committed page ended.
    let progress = saved.success && saved.data.scope === scopeKey ? saved.data : fresh();
    for (const key of Object.keys(counts) as (keyof RunCounts)[]) counts[key] += progress.counts[key];
    // The sync's own recent writes, named so that a lagging search still answers them as written.
    const reconcileIssues = target.version === "3" ? await mirror.recentlyChanged(connectionId, "autoflow", new Date(now() - RECONCILE_WINDOW_MS).toISOString(), 50) : [];
    const fields = fieldsOf(config);
    /**
     * Renews the run's lease, then reads the page at `position`; a page token that expired (seven days) or a
     * cursor literal Jira now refuses starts over from the cursor once (`restarted`). `renewed` settles first.
     */
    const read = (position: Pick<Progress, "jql" | "next">): PageRead => {
      const renewed = renew(connectionId);
      const page = (async () => {
        await renewed;
        let at = position;
        for (;;) {
          try {
            return { page: await searchPage(ctx, target, { jql: at.jql, fields, maxResults: PAGE_SIZE, reconcileIssues, ...(at.next ? { next: at.next } : {}) }), restarted: at !== position };
          } catch (error) {
            if (!(at.next && error instanceof IntegrationError && error.type === "schema")) throw error;
            at = fresh();
            await renew(connectionId);
          }
        }
      })();
      // Handled here, awaited (and thrown) where it is used: a page read ahead may fail while the one before is written.
      page.catch(() => undefined);
      return { renewed, page };
    };
    let ahead = read(progress);
    for (;;) {
      const { page, restarted } = await ahead.page;
      if (restarted) progress = fresh();
      // An issue Jira answered without a readable key or `updated` is counted and passed over, not a reason
      // to stop the sync on this page for good (the next page and the next runs go on).
      const tickets: Ticket[] = [];
      for (const issue of page.issues) {
        try {
          tickets.push(ticketOf(issue));
        } catch {
          counts.unreadable += 1;
        }
      }
      let maxUpdatedMs = progress.maxUpdatedMs;
      for (const t of tickets) if (maxUpdatedMs === null || t.updatedMs > maxUpdatedMs) maxUpdatedMs = t.updatedMs;
      const { next: _token, ...before } = progress;
      const next = page.next ? continuation(progress, scope, tickets, timeZone, page.next) : undefined;
      let after: Progress = progress;
      // The next page is asked for before this one is written, so that Jira answers it meanwhile: one page ahead at
      // most, so the run holds two pages whatever the number of issues. Its lease renewal goes first (on PostgreSQL
      // it would wait for this page's transaction, which locks the same row), and the search gets turns of the
      // event loop to be sent (on SQLite the write below holds the thread until it commits).
      const following = next ? read(next) : undefined;
      if (following) {
        await following.renewed.catch(() => undefined);
        for (let turn = 0; turn < SEND_TURNS; turn++) await new Promise((resolve) => setImmediate(resolve));
      }
      // The page and the run's new position (its counts included) commit together; the cursor moves at the last page.
      let outcome: ApplyOutcome;
      try {
        outcome = await mirror.apply(connectionId, tickets, "jira", (applied) => {
          const pageCounts = {
            ...before.counts,
            pages: before.counts.pages + 1,
            created: before.counts.created + applied.created,
            updated: before.counts.updated + applied.updated,
            unchanged: before.counts.unchanged + applied.unchanged,
            stale: before.counts.stale + applied.stale,
          };
          after = { ...before, maxUpdatedMs, counts: pageCounts, ...next };
          if (next) return { run: after, timeZone };
          const nextCursor = maxUpdatedMs === null ? cursorMs : Math.max(maxUpdatedMs, cursorMs ?? maxUpdatedMs);
          return { run: null, cursorMs: nextCursor, cursorScope: scopeKey, timeZone };
        }, { refresh });
      } catch (error) {
        // Nothing of this page is kept and the run's position stays before it; the read ahead is let finish
        // first, so that no lease renewal of this run lands after the run has released its lease.
        await following?.page.catch(() => undefined);
        throw error;
      }
      counts.pages += 1;
      counts.created += outcome.created;
      counts.updated += outcome.updated;
      counts.unchanged += outcome.unchanged;
      counts.stale += outcome.stale;
      if (!following) return;
      progress = after;
      ahead = following;
    }
  };

  /**
   * Where a run reads on after a page that is not its last. A page whose
   * issues end in a later minute than they began is followed by a new search
   * from the minute of its newest issue: a page token is an offset into the
   * order, which a change made meanwhile shifts (an issue of an earlier page
   * that changes moves behind the rest, one that is deleted leaves a gap, and
   * an issue not read yet slips in front of the offset, never to be read).
   * The new search reads that minute again, de-duplicated; a page within one
   * minute (its issues changed together) can only go on by the token.
   */
  const continuation = (progress: Progress, scope: string, tickets: readonly Ticket[], timeZone: string, token: string): Pick<Progress, "jql" | "next"> => {
    if (tickets.length > 0) {
      let [oldest, newest] = [Infinity, -Infinity];
      for (const t of tickets) [oldest, newest] = [Math.min(oldest, t.updatedMs), Math.max(newest, t.updatedMs)];
      // The literal (a dozen time-zone formattings) is written only for a page that spans minutes.
      if (Math.floor(oldest / MINUTE_MS) < Math.floor(newest / MINUTE_MS)) {
        const jql = `${scope} AND ${updatedSince(newest, timeZone, 0)} ORDER BY updated ASC, key ASC`;
        if (jql !== progress.jql) return { jql };
      }
    }
    return { jql: progress.jql, next: token };
  };

  /**
   * The id-only scan of the configured scope: a live mirrored issue the scan
   * does not list is fetched by id (GET is consistent where search lags); the
   * ones Jira no longer has, or that moved to a project the sync does not
   * cover, are marked deleted; the others (lagging, or out of a JQL scope
   * only Jira can evaluate) are applied as Jira now holds them.
   */
  const deleteScan = async (ctx: ActionContext, target: JiraTarget, config: SyncConfig, counts: RunCounts): Promise<void> => {
    const connectionId = ctx.connection.id;
    const seen = new Set<string>();
    let next: string | undefined;
    do {
      await renew(connectionId);
      const page = await searchPage(ctx, target, { jql: `${scopeJql(config)} ORDER BY key ASC`, fields: ["id"], maxResults: ID_PAGE_SIZE, ...(next ? { next } : {}) });
      for (const issue of page.issues) seen.add(issue.id);
      next = page.next;
    } while (next);
    const missing = (await mirror.liveIds(connectionId)).filter((id) => !seen.has(id));
    const gone: string[] = [];
    let present: Ticket[] = [];
    const applyPresent = async (): Promise<void> => {
      if (present.length === 0) return;
      const outcome = await mirror.apply(connectionId, present, "jira");
      counts.updated += outcome.updated;
      counts.created += outcome.created;
      present = [];
    };
    for (const [index, id] of missing.entries()) {
      if (index % PAGE_SIZE === 0) await renew(connectionId);
      const issue = await getIssue(ctx, target, id, fieldsOf(config));
      let ticket: Ticket | undefined;
      try {
        ticket = issue ? ticketOf(issue) : undefined;
      } catch {
        counts.unreadable += 1;
        continue;
      }
      // Gone from Jira, or (a projects scope) moved to a project the sync does not cover: out of the mirror.
      // Under a JQL scope only Jira can tell; the issue is kept as it now is (the search may just lag).
      if (!ticket || (config.projects && ticket.project !== null && !config.projects.includes(ticket.project))) gone.push(id);
      else present.push(ticket);
      if (present.length >= PAGE_SIZE * 5) await applyPresent();
    }
    await applyPresent();
    const events = await mirror.markDeleted(connectionId, gone, "jira", { lastDeleteScanAt: new Date(now()).toISOString() });
    counts.deleted += events.length;
  };

  const runOnce = async (userId: string, connectionId: string | undefined, options: { trigger: RunRecord["trigger"]; deleteScan?: boolean }): Promise<RunRecord> => {
    const ctx = await contextOf(userId, connectionId);
    const id = ctx.connection.id;
    const state = await mirror.state(id);
    const config = configOf(state);
    if (!config) throw invalidInput("config", "this connection's ticket sync has no configuration yet: PUT /api/integrations/jira/sync/config first", "jira");
    if (config.direction === "push") throw invalidInput("config.direction", "this connection's sync pushes only (direction push): it does not pull", "jira");
    const record: RunRecord = { trigger: options.trigger, startedAt: new Date(now()).toISOString(), counts: zeroCounts(), deleteScan: false };
    // Another instance running this connection's sync: not a second run beside it (and not a failure to record).
    await renew(id);
    try {
      const { target } = await targetFor(ctx, config);
      await pull(ctx, target, config, state, record.counts, record.startedAt);
      const scanDue = options.deleteScan ?? (state?.lastDeleteScanAt == null || now() - Date.parse(state.lastDeleteScanAt) >= config.deleteScanIntervalSeconds * 1000);
      if (scanDue) {
        record.deleteScan = true;
        await deleteScan(ctx, target, config, record.counts);
      }
      record.finishedAt = new Date(now()).toISOString();
      await mirror.saveState(id, { lastRun: record });
      deps.onRun?.(record);
      return record;
    } catch (error) {
      if (error instanceof IntegrationError && error.code === ErrorCodes.SYNC_RUNNING) throw error;
      record.finishedAt = new Date(now()).toISOString();
      record.error = error instanceof Error ? error.message : String(error);
      record.errorType = error instanceof IntegrationError ? error.type : "upstream";
      await mirror.saveState(id, { lastRun: record });
      deps.onRun?.(record);
      throw error;
    } finally {
      await mirror.releaseLease(id, leaseOwner);
    }
  };

  const connectionIdOf = async (userId: string, connectionId: string | undefined): Promise<string> => (await contextOf(userId, connectionId)).connection.id;

  const internals = { contextOf, targetFor, configOf, fieldsOf, mirror, now };
  const webhooks = createTicketWebhooks(internals, deps.jira, deps.webhooks);

  return {
    /** What the push and webhook parts of the sync share with the pull: how a connection's calls are made and targeted. */
    internals,
    /** Deliveries received (`receive`), registrations made and refreshed. */
    webhooks,

    /** Stores a connection's configuration, checked (its site against the grant's) before it is kept. */
    async configure(userId: string, input: unknown, options: { connectionId?: string } = {}): Promise<{ connectionId: string; config: SyncConfig; sites: JiraSite[]; webhooks: WebhookState | null }> {
      const parsed = syncConfigSchema.safeParse(input);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = ["config", ...(issue?.path ?? []).map(String)].join(".");
        throw invalidInput(field, `${issue?.message ?? "invalid"}`, "jira");
      }
      const ctx = await contextOf(userId, options.connectionId);
      // An OAuth grant names its scopes: a sync it cannot run is refused now, not at its first run.
      const granted = ctx.connection.scopes ?? [];
      const needed = [["read:jira-work"], ...(parsed.data.direction === "pull" ? [] : [["write:jira-work"]])];
      for (const scopes of needed) {
        const missing = missingScope({ provider: "jira", name: "Jira" }, `the ticket sync (direction ${parsed.data.direction})`, { scopes }, granted);
        if (missing) throw missing;
      }
      const { sites, target } = await targetFor(ctx, parsed.data, true);
      const site = target.base ? sites.find((s) => target.base?.endsWith(`/${encodeURIComponent(s.id)}`)) : undefined;
      const config: SyncConfig = { ...parsed.data, ...(site ? { site: site.id } : {}) };
      const before = configOf(await mirror.state(ctx.connection.id));
      // A new scope or site starts the cursor over: what the old one mirrored stays until the delete scan sees it gone.
      const rescope = before !== null && (before.site !== config.site || scopeJql(before) !== scopeJql(config));
      await mirror.saveState(ctx.connection.id, { userId, config, ...(rescope ? { cursorMs: null, run: null, lastDeleteScanAt: null } : {}) });
      // The old webhook registration is replaced by one for this configuration (never fails the configure: its state says what went wrong).
      const hooks = await webhooks.configured(ctx, config, { target, sites });
      return { connectionId: ctx.connection.id, config, sites, webhooks: hooks };
    },

    async config(userId: string, options: { connectionId?: string } = {}): Promise<{ connectionId: string; config: SyncConfig | null; sites: JiraSite[] }> {
      const ctx = await contextOf(userId, options.connectionId);
      const config = configOf(await mirror.state(ctx.connection.id));
      const sites = ctx.connection.authMethod === "oauth2" ? await accessibleSites(ctx, deps.apiUrl) : [];
      return { connectionId: ctx.connection.id, config, sites };
    },

    /** Runs a pull now (and the delete scan when due, or when asked); a run already under way is joined. */
    async run(userId: string, options: { connectionId?: string; deleteScan?: boolean; trigger?: RunRecord["trigger"] } = {}): Promise<RunRecord> {
      const id = await connectionIdOf(userId, options.connectionId);
      const under = running.get(id);
      if (under) return under;
      const run = runOnce(userId, id, { trigger: options.trigger ?? "manual", ...(options.deleteScan !== undefined ? { deleteScan: options.deleteScan } : {}) }).finally(() => running.delete(id));
      running.set(id, run);
      return run;
    },

    async status(userId: string, options: { connectionId?: string } = {}): Promise<SyncStatus> {
      const id = await connectionIdOf(userId, options.connectionId);
      const state = await mirror.state(id);
      const config = configOf(state);
      const progress = progressSchema.safeParse(state?.run);
      // A cursor read over another scope (the configuration changed since) is no cursor: the next run starts afresh.
      const cursorMs = config && state?.cursorScope === scopeKeyOf(config) ? state.cursorMs : null;
      return {
        connectionId: id,
        config,
        cursor:
          cursorMs === null
            ? null
            : {
                updatedMs: cursorMs,
                updated: new Date(cursorMs).toISOString(),
                jqlFrom: state?.timeZone && config ? cursorLiteral(cursorMs, state.timeZone, config.overlapSeconds * 1000) : null,
                timeZone: state?.timeZone ?? null,
              },
        running: running.has(id),
        resumeFrom: progress.success ? { jql: progress.data.jql, pagesDone: progress.data.counts.pages } : null,
        lastRun: (state?.lastRun as RunRecord | null) ?? null,
        lastDeleteScanAt: state?.lastDeleteScanAt ?? null,
        webhooks: webhooks.statusOf(state),
      };
    },

    async tickets(userId: string, filter: Omit<TicketFilter, "limit"> & { limit?: number }, options: { connectionId?: string } = {}) {
      const id = await connectionIdOf(userId, options.connectionId);
      const limit = filter.limit ?? 100;
      const tickets = await mirror.list(id, { ...filter, limit });
      const last = tickets.length === limit ? tickets[tickets.length - 1] : undefined;
      return { connectionId: id, tickets, ...(last ? { nextCursor: Buffer.from(JSON.stringify({ u: last.updatedMs, i: last.id })).toString("base64url") } : {}) };
    },

    async ticket(userId: string, idOrKey: string, options: { connectionId?: string } = {}) {
      const id = await connectionIdOf(userId, options.connectionId);
      return mirror.get(id, idOrKey);
    },

    async events(userId: string, after: number, limit: number, options: { connectionId?: string } = {}): Promise<{ connectionId: string; events: TicketEvent[]; next: number }> {
      const id = await connectionIdOf(userId, options.connectionId);
      const events = await mirror.events(id, after, limit);
      return { connectionId: id, events, next: events.length > 0 ? (events[events.length - 1] as TicketEvent).seq : after };
    },

    /** How far behind now each configured sync's cursor is (a sync with no cursor yet is not listed). */
    async lags(): Promise<Array<{ connectionId: string; lagSeconds: number }>> {
      const out: Array<{ connectionId: string; lagSeconds: number }> = [];
      for (const state of await mirror.configured()) {
        const config = configOf(state);
        if (config && state.cursorMs !== null && state.cursorScope === scopeKeyOf(config)) out.push({ connectionId: state.connectionId, lagSeconds: Math.max(0, (now() - state.cursorMs) / 1000) });
      }
      return out;
    },

    /** The scheduler's tick: a run for every configured pulling connection whose interval has passed, one after another. */
    async runDue(): Promise<Array<{ connectionId: string; outcome: "ran" | "failed" | "skipped" | "forgotten" }>> {
      const out: Array<{ connectionId: string; outcome: "ran" | "failed" | "skipped" | "forgotten" }> = [];
      // Webhook registrations refreshed well before they lapse (a failure there is in their state, and polling goes on).
      await webhooks.tick().catch(() => undefined);
      for (const state of await mirror.configured()) {
        const config = configOf(state);
        const last = state.lastRun as RunRecord | null;
        const resuming = progressSchema.safeParse(state.run).success;
        const due = !last || resuming || now() - Date.parse(last.startedAt) >= (config?.intervalSeconds ?? 300) * 1000;
        // An auth failure waits for the user (a reconnect, or a run they ask for): retrying would fail the same way.
        if (!config || config.direction === "push" || !state.userId || !due || last?.errorType === "auth") {
          out.push({ connectionId: state.connectionId, outcome: "skipped" });
          continue;
        }
        try {
          await this.run(state.userId, { connectionId: state.connectionId, trigger: "schedule" });
          out.push({ connectionId: state.connectionId, outcome: "ran" });
        } catch (error) {
          // A connection disconnected (or gone) since: its mirror and feed go with it, and the tick stops asking.
          const gone = error instanceof IntegrationError && (error.code === ErrorCodes.CONNECTION_NOT_FOUND || error.code === ErrorCodes.CONNECTION_REVOKED);
          if (gone) await mirror.forget(state.connectionId);
          out.push({ connectionId: state.connectionId, outcome: gone ? "forgotten" : "failed" });
        }
      }
      return out;
    },
  };
}

export type TicketSync = ReturnType<typeof createTicketSync>;

function syncRunning(): IntegrationError {
  return new IntegrationError({ type: "schema", code: ErrorCodes.SYNC_RUNNING, provider: "jira", message: "another instance is running this connection's sync; its run answers for it (see GET /api/integrations/jira/sync)" });
}

/** A tickets listing cursor (from `nextCursor`), or a 400 naming it. */
export function parseTicketCursor(cursor: string | undefined): { updatedMs: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = z.strictObject({ u: z.number(), i: z.string() }).parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
    return { updatedMs: parsed.u, id: parsed.i };
  } catch {
    throw invalidInput("cursor", "not a cursor this listing answered (pass nextCursor as it came)", "jira");
  }
}
