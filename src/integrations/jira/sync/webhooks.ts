/**
 * The ticket sync's webhooks: what Jira sends when an issue changes, and the
 * dynamic webhooks the service registers for OAuth connections.
 *
 * Receiving (`POST /api/integrations/jira/webhooks`, no user token: Jira
 * calls it). A delivery is verified before a byte of it is trusted: a
 * dynamic webhook's `Authorization: Bearer <JWT>` (HS256 under the Jira
 * app's client secret), or an admin webhook's `X-Hub-Signature` (HMAC-SHA256
 * of the raw body under the operator's `AUTOFLOW_JIRA_WEBHOOK_SECRET`, the
 * connection named by `?connectionId=`). It is then attributed: a dynamic
 * delivery to the connections whose registered webhook ids it names
 * (`matchedWebhookIds`) on its site (the JWT's `context.cloudId`, or the
 * origin of the issue's `self`). One that proves nothing, or belongs to no
 * connection, is refused and changes nothing. A delivery is taken once by
 * its `X-Atlassian-Webhook-Identifier` (kept a few days); it is applied by
 * fetching the issue again through the connection (GET is consistent where
 * search lags, and the payload is never the source of truth), so the
 * mirror's `(id, updated)` rule keeps the sync's own writes from coming back
 * as changes. A 404 marks the issue deleted (a `jira:issue_deleted` is
 * checked the same way: the JWT does not sign the body).
 *
 * Registering. When a configuration that pulls is stored for an OAuth
 * connection, one dynamic webhook is registered at its site for
 * `jira:issue_created`, `_updated` and `_deleted`, its `jqlFilter` the
 * configured projects (or the configured JQL, when it keeps to the subset
 * Jira takes there; else none is registered and polling alone keeps the
 * mirror). A new configuration replaces the old registration. Registered
 * webhooks expire after 30 days: the scheduler's tick refreshes them when
 * fewer than 20 days remain, and registers again one that lapsed. A refusal
 * (Jira's per-user cap, a scope the grant lacks) is kept in the state the
 * status shows; polling runs regardless.
 */
import type { Kysely } from "kysely";
import { z } from "zod";
import type { ActionContext } from "../../shared/action.js";
import { ErrorCodes, IntegrationError, invalidInput } from "../../shared/errors.js";
import type { ConnectorLifecycle } from "../../shared/lifecycle.js";
import type { SqlTicketMirror, TicketSyncState } from "../../../store/ticketMirror.js";
import type { Database } from "../../../store/schema.js";
import { scopeJql, type SyncConfig } from "./config.js";
import { getIssue, type JiraSite, type JiraTarget } from "./jiraApi.js";
import { ticketOf } from "./ticket.js";
import { adminWebhookKey, verifyDynamicWebhook, verifyHubSignature, type WebhookProof } from "./webhookAuth.js";

/** Where Jira delivers, below the service's public URL. */
export const WEBHOOK_PATH = "/api/integrations/jira/webhooks";
export const WEBHOOK_EVENTS = ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"] as const;

const DAY_MS = 86_400_000;
/** Jira's lifetime of a dynamic webhook, from its registration or last refresh. */
const WEBHOOK_TTL_MS = 30 * DAY_MS;
/** Refreshed once fewer days than this remain: ten days of ticks to get it done. */
const REFRESH_WHEN_LEFT_MS = 20 * DAY_MS;
/** A registration Jira refused (its cap, an outage) is tried again this long after. */
const RETRY_FAILED_MS = 6 * 3_600_000;
/** Delivery identifiers are kept this long: Jira's retries of one delivery come within minutes. */
const DELIVERY_MEMORY_MS = 3 * DAY_MS;
/** Old identifiers are pruned at most this often. */
const PRUNE_EVERY_MS = 3_600_000;
/** The scope a dynamic webhook needs besides read:jira-work. */
const WEBHOOK_SCOPE = "manage:jira-webhook";

/** What the sync shares with its webhooks (createTicketSync's `internals`). */
export type TicketSyncInternals = {
  contextOf(userId: string, connectionId: string | undefined): Promise<ActionContext>;
  targetFor(ctx: ActionContext, config: Pick<SyncConfig, "site">): Promise<{ target: JiraTarget; sites: JiraSite[] }>;
  configOf(state: TicketSyncState | undefined): SyncConfig | null;
  fieldsOf(config: SyncConfig): string[];
  mirror: SqlTicketMirror;
  now: () => number;
};

export type TicketWebhookOptions = {
  /** The service's public URL (`AUTOFLOW_PUBLIC_URL`): Jira delivers to it + `/api/integrations/jira/webhooks`. */
  publicUrl: string;
  /** The admin webhooks' shared secret (`AUTOFLOW_JIRA_WEBHOOK_SECRET`); admin deliveries are refused without one. */
  adminSecret?: string;
  /** Where delivery identifiers are kept (ticket_webhook_deliveries). */
  db: Kysely<Database>;
  /** The service's clock (JWT times, expiry); the sync's by default. */
  now?: () => number;
};

/** A connection's webhook state, as kept in ticket_sync_states.webhooks and shown by the status. */
export type WebhookState =
  | {
      kind: "dynamic";
      /** registered: live at Jira; failed: Jira refused or could not be reached (tried again later); unsupported: the scope's JQL is beyond Jira's webhook subset; unavailable: the grant cannot register. */
      status: "registered" | "failed" | "unsupported" | "unavailable";
      url: string;
      site: { id: string; url: string } | null;
      ids: number[];
      events: string[];
      jqlFilter: string | null;
      /** When Jira lets the registration lapse (epoch ms), and as ISO. */
      expiresAtMs: number | null;
      expirationDate: string | null;
      attemptedAt: string;
      registeredAt: string | null;
      refreshedAt: string | null;
      error: string | null;
      errorType: string | null;
      /** What polling does meanwhile, or what else the operator should know. */
      note: string | null;
    }
  | {
      kind: "admin";
      /** The URL an admin webhook of this connection is given (System → WebHooks), with the secret below. */
      url: string;
      secretConfigured: boolean;
      /** The key this connection's admin webhook signs with (X-Hub-Signature): its own, derived from the operator's secret. */
      secret?: string;
      note: string;
    };
type DynamicState = Extract<WebhookState, { kind: "dynamic" }>;

const dynamicSchema = z.looseObject({
  kind: z.literal("dynamic"),
  status: z.enum(["registered", "failed", "unsupported", "unavailable"]),
  site: z.object({ id: z.string(), url: z.string() }).nullable(),
  ids: z.array(z.number()),
  expiresAtMs: z.number().nullable(),
  attemptedAt: z.string(),
});

/** A connection's dynamic registration as stored, or undefined. */
function dynamicOf(state: TicketSyncState | undefined): DynamicState | undefined {
  const parsed = dynamicSchema.safeParse(state?.webhooks);
  return parsed.success ? (state?.webhooks as DynamicState) : undefined;
}

/** `expirationDate` as Jira answers it: int64 epoch ms (its schema), or an ISO string like `2019-06-01T12:42:30.000+0000` (its samples). */
export function expirationMs(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const ms = Date.parse(text.replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
  return Number.isNaN(ms) ? undefined : ms;
}

// ---- the webhook JQL subset ---------------------------------------------------------

/** The fields a dynamic webhook's jqlFilter may name (REST v3, "Register dynamic webhooks"). */
const FILTER_FIELDS = new Set(["issuekey", "project", "issuetype", "status", "assignee", "reporter"]);
const WORDS_NOT_VALUES = new Set(["and", "or", "not", "in", "is", "empty", "null", "order", "by"]);

/**
 * Whether a JQL filter keeps to what Jira takes as a webhook's `jqlFilter`:
 * issueKey, project, issuetype, status, assignee and reporter with =, !=, IN
 * and NOT IN, joined by AND and OR, in parentheses or not; no functions, no
 * NOT, no EMPTY. Answers the first thing beyond it, or undefined when it fits.
 * Conservative: what it cannot tell fits is left to polling.
 */
export function webhookFilterProblem(jql: string): string | undefined {
  const tokens: Array<{ kind: "str" | "word" | "op" | "(" | ")" | ","; text: string }> = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(!=|!~|<=|>=|=|~|<|>)|(\()|(\))|(,)|([A-Za-z0-9_.\-@:]+)|(\S))/y;
  for (;;) {
    if (jql.slice(re.lastIndex).trim() === "") break;
    const m = re.exec(jql);
    if (!m) return "the filter does not parse";
    if (m[1] !== undefined || m[2] !== undefined) tokens.push({ kind: "str", text: m[1] ?? m[2] ?? "" });
    else if (m[3]) tokens.push({ kind: "op", text: m[3] });
    else if (m[4]) tokens.push({ kind: "(", text: "(" });
    else if (m[5]) tokens.push({ kind: ")", text: ")" });
    else if (m[6]) tokens.push({ kind: ",", text: "," });
    else if (m[7]) tokens.push({ kind: "word", text: m[7] });
    else return `"${m[8]}" is not part of the webhook JQL subset`;
  }
  let i = 0;
  const word = (w: string): boolean => tokens[i]?.kind === "word" && tokens[i]?.text.toLowerCase() === w;
  const literal = (): string | undefined => {
    const t = tokens[i];
    if (!t || (t.kind !== "str" && t.kind !== "word")) return "a value is missing";
    if (t.kind === "word" && WORDS_NOT_VALUES.has(t.text.toLowerCase())) return `"${t.text}" is not a value a webhook filter takes`;
    i++;
    if (tokens[i]?.kind === "(") return `functions (${t.text}()) are not part of the webhook JQL subset`;
    return undefined;
  };
  const clause = (): string | undefined => {
    const field = tokens[i];
    if (!field || field.kind !== "word") return "a clause must start with a field";
    if (!FILTER_FIELDS.has(field.text.toLowerCase())) return `the field "${field.text}" is not one a webhook filter takes (issueKey, project, issuetype, status, assignee, reporter)`;
    i++;
    let list = false;
    const op = tokens[i];
    if (op?.kind === "op" && (op.text === "=" || op.text === "!=")) i++;
    else if (word("in")) {
      i++;
      list = true;
    } else if (word("not") && tokens[i + 1]?.kind === "word" && tokens[i + 1]?.text.toLowerCase() === "in") {
      i += 2;
      list = true;
    } else return `the operator after "${field.text}" is not one a webhook filter takes (=, !=, IN, NOT IN)`;
    if (!list) return literal();
    if (tokens[i]?.kind !== "(") return "IN takes a parenthesized list";
    i++;
    for (;;) {
      const bad = literal();
      if (bad) return bad;
      if (tokens[i]?.kind === ",") i++;
      else break;
    }
    if (tokens[i]?.kind !== ")") return "an IN list is not closed";
    i++;
    return undefined;
  };
  const expression = (depth: number): string | undefined => {
    if (depth > 20) return "the filter nests too deeply";
    for (;;) {
      let bad: string | undefined;
      if (tokens[i]?.kind === "(") {
        i++;
        bad = expression(depth + 1);
        if (!bad && tokens[i]?.kind !== ")") bad = "a parenthesis is not closed";
        if (!bad) i++;
      } else bad = clause();
      if (bad) return bad;
      if (word("and") || word("or")) i++;
      else return undefined;
    }
  };
  const bad = expression(0);
  if (bad) return bad;
  if (i < tokens.length) return `"${tokens[i]?.text ?? ""}" is beyond the webhook JQL subset`;
  return undefined;
}

// ---- the module -----------------------------------------------------------------------

const webhookList = z.looseObject({ isLast: z.boolean().optional(), startAt: z.number().optional(), total: z.number().optional(), values: z.array(z.looseObject({ id: z.number(), expirationDate: z.unknown().optional() })) });
const registration = z.looseObject({ webhookRegistrationResult: z.array(z.looseObject({ createdWebhookId: z.number().optional(), errors: z.array(z.string()).optional() })) });
const refreshAnswer = z.looseObject({ expirationDate: z.unknown() });
const deliverySchema = z.looseObject({
  webhookEvent: z.string().min(1).max(200),
  issue: z.looseObject({ id: z.union([z.string(), z.number()]).transform(String), key: z.string().optional(), self: z.string().optional() }).optional(),
  matchedWebhookIds: z.array(z.number()).optional(),
});

export type DeliveryInput = {
  headers: Readonly<Record<string, string | string[] | undefined>>;
  rawBody: Buffer;
  /** `?connectionId=` of an admin webhook's URL. */
  connectionId?: string;
};
export type DeliveryOutcome = "created" | "updated" | "unchanged" | "stale" | "deleted" | "ignored" | "failed";
export type DeliveryAnswer = { received: true; duplicate: boolean; via?: "jwt" | "hmac"; outcomes: DeliveryOutcome[] };

/** The HTTP status of a refused delivery (the route sends it in the one error body), undefined for any other error. */
export function webhookRefusalStatus(error: unknown): number | undefined {
  if (!(error instanceof IntegrationError)) return undefined;
  if (error.code === ErrorCodes.WEBHOOK_UNVERIFIED) return 401;
  if (error.code === ErrorCodes.WEBHOOK_UNATTRIBUTABLE) return 403;
  return undefined;
}

const header = (headers: DeliveryInput["headers"], name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};
const originOf = (url: string | undefined): string | undefined => {
  if (!url) return undefined;
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
};
const unverified = (field: "authorization" | "x-hub-signature", message: string) =>
  new IntegrationError({ type: "auth", code: ErrorCodes.WEBHOOK_UNVERIFIED, provider: "jira", field, message: `webhook refused: ${message}` });
const unattributable = (field: string, message: string) => new IntegrationError({ type: "auth", code: ErrorCodes.WEBHOOK_UNATTRIBUTABLE, provider: "jira", field, message: `webhook refused: ${message}` });
const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function createTicketWebhooks(internals: TicketSyncInternals, jira: Pick<ConnectorLifecycle, "settings">, options: TicketWebhookOptions | undefined) {
  const { mirror } = internals;
  const now = options?.now ?? internals.now;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const url = options ? `${options.publicUrl.replace(/\/+$/, "")}${WEBHOOK_PATH}` : undefined;
  let prunedAt = 0;

  const calls = (target: JiraTarget) => {
    if (!target.base) throw new Error("dynamic webhooks are registered at a site's gateway base");
    return `${target.base}/rest/api/3/webhook`;
  };

  /** The expiry Jira holds for a webhook (its list), or undefined when it does not list it. */
  const listedExpiry = async (ctx: ActionContext, target: JiraTarget, id: number): Promise<number | undefined> => {
    let startAt = 0;
    for (let page = 0; page < 20; page++) {
      const answer = await ctx.read({ operation: "GET /rest/api/3/webhook", method: "GET", url: calls(target), query: { startAt: String(startAt), maxResults: "100" } }, webhookList);
      const found = answer.values.find((w) => w.id === id);
      if (found) return expirationMs(found.expirationDate);
      startAt += answer.values.length;
      if (answer.isLast !== false || answer.values.length === 0) return undefined;
    }
    return undefined;
  };

  /** Deletes a registration's webhooks at its site; a failure is answered, not thrown (they lapse in 30 days). */
  const unregister = async (ctx: ActionContext, old: DynamicState | undefined): Promise<string | null> => {
    if (!old || old.ids.length === 0 || !old.site) return null;
    try {
      const { target } = await internals.targetFor(ctx, { site: old.site.id });
      await ctx.call({ operation: "DELETE /rest/api/3/webhook", method: "DELETE", url: calls(target), json: { webhookIds: old.ids }, idempotent: true, expectJson: false });
      return null;
    } catch (error) {
      return `the previous webhooks (${old.ids.join(", ")}) could not be deleted and lapse by themselves within 30 days: ${messageOf(error)}`;
    }
  };

  /** Registers the connection's one dynamic webhook for this configuration (or says why none is). */
  const register = async (ctx: ActionContext, config: SyncConfig, at: { target: JiraTarget; sites: JiraSite[] }): Promise<DynamicState> => {
    const attemptedAt = iso(now());
    const siteOfTarget = at.sites.find((s) => at.target.base?.endsWith(`/${encodeURIComponent(s.id)}`));
    const base: DynamicState = {
      kind: "dynamic",
      status: "unavailable",
      url: url ?? "",
      site: siteOfTarget ? { id: siteOfTarget.id, url: siteOfTarget.url } : null,
      ids: [],
      events: [...WEBHOOK_EVENTS],
      jqlFilter: null,
      expiresAtMs: null,
      expirationDate: null,
      attemptedAt,
      registeredAt: null,
      refreshedAt: null,
      error: null,
      errorType: null,
      note: null,
    };
    const polling = "changes arrive by polling only (intervalSeconds)";
    if (!url) return { ...base, note: `the service has no public URL for webhooks: ${polling}` };
    if (!base.site) return { ...base, note: `no site of the grant to register at: ${polling}` };
    const granted = ctx.connection.scopes;
    if (granted && !granted.includes(WEBHOOK_SCOPE)) {
      return { ...base, note: `the grant lacks ${WEBHOOK_SCOPE} (add it to AUTOFLOW_JIRA_SCOPES and reconnect): ${polling}` };
    }
    let jqlFilter: string;
    if (config.projects) jqlFilter = scopeJql(config);
    else {
      const problem = webhookFilterProblem(config.jql as string);
      if (problem) return { ...base, status: "unsupported", note: `the jql scope is beyond what Jira takes as a webhook filter (${problem}): ${polling}` };
      jqlFilter = config.jql as string;
    }
    const planned = { ...base, jqlFilter };
    try {
      const answer = await ctx.read(
        { operation: "POST /rest/api/3/webhook", method: "POST", url: calls(at.target), json: { url, webhooks: [{ events: [...WEBHOOK_EVENTS], jqlFilter }] } },
        registration,
      );
      const result = answer.webhookRegistrationResult[0];
      if (!result || result.createdWebhookId === undefined) {
        const errors = result?.errors?.join("; ") || "Jira registered no webhook and said nothing why";
        return { ...planned, status: "failed", error: errors, errorType: "schema", note: `Jira refused the webhook (a per-user cap, or the filter): ${polling}; tried again in ${RETRY_FAILED_MS / 3_600_000} hours` };
      }
      const id = result.createdWebhookId;
      const expiresAtMs = (await listedExpiry(ctx, at.target, id).catch(() => undefined)) ?? Date.parse(attemptedAt) + WEBHOOK_TTL_MS;
      return { ...planned, status: "registered", ids: [id], expiresAtMs, expirationDate: iso(expiresAtMs), registeredAt: attemptedAt };
    } catch (error) {
      return {
        ...planned,
        status: "failed",
        error: messageOf(error),
        errorType: error instanceof IntegrationError ? error.type : "upstream",
        note: `the webhook could not be registered: ${polling}; tried again in ${RETRY_FAILED_MS / 3_600_000} hours`,
      };
    }
  };

  /** Extends a registration by 30 days (Jira's refresh). */
  const refresh = async (ctx: ActionContext, state: DynamicState): Promise<DynamicState> => {
    const at = iso(now());
    try {
      const { target } = await internals.targetFor(ctx, { site: state.site?.id as string });
      const answer = await ctx.read({ operation: "PUT /rest/api/3/webhook/refresh", method: "PUT", url: `${calls(target)}/refresh`, json: { webhookIds: state.ids }, idempotent: true }, refreshAnswer);
      const expiresAtMs = expirationMs(answer.expirationDate);
      if (expiresAtMs === undefined) throw new IntegrationError({ type: "upstream", provider: "jira", message: "Jira's refresh answered no readable expirationDate" });
      return { ...state, expiresAtMs, expirationDate: iso(expiresAtMs), refreshedAt: at, error: null, errorType: null };
    } catch (error) {
      return { ...state, error: `refresh failed (tried again at the next tick): ${messageOf(error)}`, errorType: error instanceof IntegrationError ? error.type : "upstream" };
    }
  };

  /**
   * One connection's part of a delivery: the issue as Jira now holds it. A delete is checked too (a 404), not
   * taken from the payload: the JWT does not sign the body, so the body only says which issue to look at.
   */
  const applyDelivery = async (connectionId: string, userId: string, issueId: string): Promise<DeliveryOutcome> => {
    const state = await mirror.state(connectionId);
    const config = internals.configOf(state);
    if (!config || config.direction === "push") return "ignored";
    const ctx = await internals.contextOf(userId, connectionId);
    const { target } = await internals.targetFor(ctx, config);
    const issue = await getIssue(ctx, target, issueId, internals.fieldsOf(config));
    if (!issue) return (await mirror.markDeleted(connectionId, [issueId], "webhook")).length > 0 ? "deleted" : "ignored";
    const ticket = ticketOf(issue);
    // Outside a projects scope (an admin webhook's wider filter, or a move): mirrored only if it already was, as the delete scan does.
    if (config.projects && !config.projects.includes(ticket.project ?? "") && !(await mirror.get(connectionId, ticket.id))) return "ignored";
    const outcome = await mirror.apply(connectionId, [ticket], "webhook");
    return outcome.created > 0 ? "created" : outcome.updated > 0 ? "updated" : outcome.stale > 0 ? "stale" : "unchanged";
  };

  const prune = async (): Promise<void> => {
    if (!options || now() - prunedAt < PRUNE_EVERY_MS) return;
    prunedAt = now();
    await options.db.deleteFrom("ticket_webhook_deliveries").where("received_at", "<", iso(now() - DELIVERY_MEMORY_MS)).execute();
  };

  /**
   * After a configuration is stored: the old registration is deleted, and a
   * new one made when the sync pulls on an OAuth connection. Never throws:
   * what failed is in the state it stores and answers.
   */
  const configured = async (ctx: ActionContext, config: SyncConfig, at: { target: JiraTarget; sites: JiraSite[] }): Promise<WebhookState | null> => {
    const connectionId = ctx.connection.id;
    const old = dynamicOf(await mirror.state(connectionId));
    const leftover = await unregister(ctx, old);
    let next: WebhookState | null;
    if (ctx.connection.authMethod !== "oauth2") {
      next = {
        kind: "admin",
        url: `${url ?? WEBHOOK_PATH}?connectionId=${encodeURIComponent(connectionId)}`,
        secretConfigured: options?.adminSecret !== undefined,
        ...(options?.adminSecret ? { secret: adminWebhookKey(options.adminSecret, connectionId) } : {}),
        note: options?.adminSecret
          ? "dynamic webhooks are for OAuth apps: a Jira admin may add a webhook with this URL and this connection's secret; polling runs regardless"
          : "dynamic webhooks are for OAuth apps, and admin webhooks need AUTOFLOW_JIRA_WEBHOOK_SECRET: changes arrive by polling only",
      };
    } else if (config.direction === "push") next = null;
    else next = await register(ctx, config, at);
    if (next?.kind === "dynamic" && leftover) next = { ...next, note: [next.note, leftover].filter(Boolean).join("; ") };
    await mirror.saveState(connectionId, { webhooks: next });
    return next;
  };

  return {
    url,
    configured,

    /** The webhook state the status shows. */
    statusOf(state: TicketSyncState | undefined): WebhookState | null {
      const value = state?.webhooks;
      return value && typeof value === "object" ? (value as WebhookState) : null;
    },

    /**
     * The scheduler's part: every registration with fewer than 20 days left is
     * refreshed, one that lapsed is registered again, a refused one is tried
     * again after a while; old delivery identifiers are pruned.
     */
    async tick(): Promise<Array<{ connectionId: string; outcome: "refreshed" | "registered" | "failed" | "skipped" }>> {
      const out: Array<{ connectionId: string; outcome: "refreshed" | "registered" | "failed" | "skipped" }> = [];
      await prune().catch(() => undefined);
      for (const state of await mirror.configured()) {
        const hooks = dynamicOf(state);
        const config = internals.configOf(state);
        if (!hooks || !config || config.direction === "push" || !state.userId) continue;
        const t = now();
        const lapsed = hooks.status === "registered" && hooks.expiresAtMs !== null && hooks.expiresAtMs <= t;
        const refreshDue = hooks.status === "registered" && !lapsed && (hooks.expiresAtMs === null || hooks.expiresAtMs - t < REFRESH_WHEN_LEFT_MS);
        const retryDue = hooks.status === "failed" && t - Date.parse(hooks.attemptedAt) >= RETRY_FAILED_MS;
        if (!lapsed && !refreshDue && !retryDue) {
          out.push({ connectionId: state.connectionId, outcome: "skipped" });
          continue;
        }
        try {
          const ctx = await internals.contextOf(state.userId, state.connectionId);
          if (refreshDue) {
            const next = await refresh(ctx, hooks);
            await mirror.saveState(state.connectionId, { webhooks: next });
            out.push({ connectionId: state.connectionId, outcome: next.refreshedAt === hooks.refreshedAt ? "failed" : "refreshed" });
          } else {
            const next = await configured(ctx, config, await internals.targetFor(ctx, config));
            out.push({ connectionId: state.connectionId, outcome: next?.kind === "dynamic" && next.status === "registered" ? "registered" : "failed" });
          }
        } catch {
          out.push({ connectionId: state.connectionId, outcome: "failed" });
        }
      }
      return out;
    },

    /**
     * One delivery: verified, attributed, taken once, applied by fetching the
     * issue again. Refusals throw (webhookRefusalStatus tells their status);
     * a failure to apply forgets the delivery's identifier, so Jira's retry
     * of it is applied.
     */
    async receive(input: DeliveryInput): Promise<DeliveryAnswer> {
      const signature = header(input.headers, "x-hub-signature");
      let proof: WebhookProof;
      if (signature !== undefined) {
        if (!options?.adminSecret) throw unverified("x-hub-signature", "an admin webhook (X-Hub-Signature) cannot be checked: this service has no AUTOFLOW_JIRA_WEBHOOK_SECRET");
        if (!input.connectionId) throw unattributable("connectionId", "an admin webhook names its connection in its URL (?connectionId=)");
        // Each connection's own key: one connection's Jira admin cannot sign deliveries for another's.
        proof = verifyHubSignature(input.rawBody, signature, adminWebhookKey(options.adminSecret, input.connectionId));
      } else {
        proof = await verifyDynamicWebhook(header(input.headers, "authorization"), jira.settings.clientSecret, now());
      }
      if (!proof.ok) throw unverified(signature !== undefined ? "x-hub-signature" : "authorization", proof.detail);

      let body: z.infer<typeof deliverySchema>;
      try {
        const parsed = deliverySchema.safeParse(JSON.parse(input.rawBody.toString("utf8")));
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw invalidInput(["body", ...(issue?.path ?? []).map(String)].join("."), issue?.message ?? "invalid", "jira");
        }
        body = parsed.data;
      } catch (error) {
        if (error instanceof IntegrationError) throw error;
        throw invalidInput("body", "a webhook delivery is a JSON object", "jira");
      }

      // Whose delivery it is.
      const targets: Array<{ connectionId: string; userId: string }> = [];
      if (proof.via === "hmac") {
        if (!input.connectionId) throw unattributable("connectionId", "an admin webhook names its connection in its URL (?connectionId=)");
        const state = await mirror.state(input.connectionId);
        if (!state?.userId || !internals.configOf(state)) {
          throw new IntegrationError({ type: "schema", code: ErrorCodes.CONNECTION_NOT_FOUND, provider: "jira", field: "connectionId", message: `no ticket sync is configured for connection ${input.connectionId.slice(0, 64)}` });
        }
        targets.push({ connectionId: state.connectionId, userId: state.userId });
      } else {
        const context = (proof.claims as { context?: { cloudId?: unknown } }).context;
        const cloudId = typeof context?.cloudId === "string" ? context.cloudId : undefined;
        const origin = originOf(body.issue?.self);
        const matched = new Set(body.matchedWebhookIds ?? []);
        if (matched.size === 0) throw unattributable("body.matchedWebhookIds", "a dynamic webhook's delivery names its webhooks (matchedWebhookIds)");
        if (!cloudId && !origin) throw unattributable("body.issue.self", "the delivery names no site (the JWT's context.cloudId, or the issue's self)");
        for (const state of await mirror.configured()) {
          const hooks = dynamicOf(state);
          if (!hooks?.site || !state.userId || !hooks.ids.some((id) => matched.has(id))) continue;
          const sameSite = cloudId !== undefined ? hooks.site.id === cloudId : originOf(hooks.site.url) === origin;
          if (sameSite) targets.push({ connectionId: state.connectionId, userId: state.userId });
        }
        if (targets.length === 0) throw unattributable("body.matchedWebhookIds", "no connection of this service registered the webhooks it names at its site");
      }

      // Taken once.
      const identifier = header(input.headers, "x-atlassian-webhook-identifier");
      if (identifier !== undefined && options) {
        await prune().catch(() => undefined);
        const inserted = await options.db
          .insertInto("ticket_webhook_deliveries")
          .values({ identifier: identifier.slice(0, 200), connection_id: (targets[0] as { connectionId: string }).connectionId, received_at: iso(now()) })
          .onConflict((oc) => oc.column("identifier").doNothing())
          .returning("identifier")
          .executeTakeFirst();
        if (!inserted) return { received: true, duplicate: true, via: proof.via, outcomes: [] };
      }

      // Each connection on its own: one whose credential is dead (an auth error, marked on its health) does not hold
      // the others back; a passing failure (rate limit, network, Jira's 5xx) makes Jira deliver again.
      const outcomes: DeliveryOutcome[] = [];
      let transient: unknown;
      const issueId = body.issue?.id;
      for (const t of targets) {
        try {
          outcomes.push(issueId === undefined ? "ignored" : await applyDelivery(t.connectionId, t.userId, issueId));
        } catch (error) {
          if (error instanceof IntegrationError && !error.retryable) outcomes.push("failed");
          else transient ??= error;
        }
      }
      if (transient !== undefined) {
        if (identifier !== undefined && options) await options.db.deleteFrom("ticket_webhook_deliveries").where("identifier", "=", identifier.slice(0, 200)).execute();
        throw transient;
      }
      return { received: true, duplicate: false, via: proof.via, outcomes };
    },
  };
}

export type TicketWebhooks = ReturnType<typeof createTicketWebhooks>;
