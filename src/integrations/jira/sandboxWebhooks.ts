/**
 * The Jira sandbox's dynamic webhooks (providers.md part 2 §4.7), for OAuth 2.0 (3LO) apps through the gateway,
 * with `manage:jira-webhook` and `read:jira-work`:
 *
 *   POST   .../rest/api/3/webhook          {url, webhooks: [{events, jqlFilter, fieldIdsFilter?, issuePropertyKeysFilter?}]}
 *                                          → 200 {webhookRegistrationResult: [{createdWebhookId} | {errors: [...]}]}, in order
 *   GET    .../rest/api/3/webhook          ?startAt&maxResults → {isLast, maxResults, startAt, total, values: [{id, events,
 *                                          jqlFilter, fieldIdsFilter?, expirationDate}]} (the live ones of this app)
 *   DELETE .../rest/api/3/webhook          {webhookIds} → 202
 *   PUT    .../rest/api/3/webhook/refresh  {webhookIds} → 200 {expirationDate} (30 days from now, epoch ms)
 *
 * jqlFilter takes only what Jira allows there (issueKey, project, issuetype, status, assignee, reporter with =, !=,
 * IN, NOT IN). One URL per app. The URL's host must be loopback (127.0.0.0/8, ::1, localhost): the sandbox never
 * sends anything beyond this machine. [UNCERTAIN] a per-user cap of 5 webhooks per app per site (Atlassian states
 * a cap exists, not its figure).
 *
 * Deliveries: after the answer to a change, every live webhook whose events and jqlFilter (and fieldIdsFilter, for
 * an update) take it gets one POST of JSON with `Authorization: Bearer <JWT>` (HS256 under the app's client secret;
 * [UNCERTAIN] the claims: iss = client id, sub = the registering user's accountId, iat, exp 5 minutes later, and
 * context {cloudId}), `X-Atlassian-Webhook-Identifier` (one per delivery, kept across retries) and
 * `X-Atlassian-Webhook-Retry: n` on the n-th retry. A 5xx, a 429 or a connection error is retried
 * (`webhookRetryDelaysMs`, 3 retries by default). Control plane:
 *
 *   GET    /_sandbox/jira/deliveries       ?waitMs=N (waits up to N ms, at most 30000, for none to be pending)
 *                                          → {pending, deliveries: [{identifier, url, webhookEvent, issueKey, webhookIds,
 *                                          status: "pending"|"delivered"|"failed", attempts: [{status?|error?, at}], body}]}
 *   DELETE /_sandbox/jira/deliveries       forget the finished ones
 */
import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import { SignJWT } from "jose";
import { fetch as undiciFetch } from "undici";
import { queryParams } from "../../sandbox/kit.js";
import { errorCollection, jiraSend, type IssueEvent, type JiraSite, type JiraUser, type RestCaller, type WebhookRecord, type jiraIssues } from "./sandboxIssues.js";

/** Dynamic webhooks expire 30 days after registration or refresh. */
export const WEBHOOK_TTL_MS = 30 * 86_400_000;
/** [UNCERTAIN] the per-user, per-app, per-site cap. */
const WEBHOOKS_PER_USER = 5;
const EVENTS = new Set(["jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created", "comment_updated", "comment_deleted", "issue_property_set", "issue_property_deleted"]);
const LIST_PAGE = 100;
const DELIVERY_TIMEOUT_MS = 10_000;
const CONCURRENCY = 4;
const DELIVERY_LOG_LIMIT = 5_000;

type Attempt = { at: string; status?: number; error?: string };
export type Delivery = { identifier: string; url: string; webhookEvent: string; issueKey: string; webhookIds: number[]; status: "pending" | "delivered" | "failed"; attempts: Attempt[]; body: Record<string, unknown> };

/** Whether a URL's host is this machine. */
export function isLoopbackUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return isIP(host) === 6 && (host === "::1" || host === "0:0:0:0:0:0:0:1");
}

export type WebhooksContext = {
  now: () => number;
  clientId: string;
  clientSecret: string;
  /** Who registers (the calling user). */
  owner: JiraUser;
  issues: ReturnType<typeof jiraIssues>;
  /** The site's own URL, where the payload's `self` links point. */
  siteUrl: (site: JiraSite) => string;
  retryDelaysMs: readonly number[];
};

export function jiraWebhooks(ctx: WebhooksContext) {
  const { now } = ctx;
  const live = (site: JiraSite): WebhookRecord[] => [...site.webhooks.values()].filter((w) => w.expiresAt > now()).sort((a, b) => a.id - b.id);
  const idList = (body: unknown): number[] | undefined => {
    const ids = (body as { webhookIds?: unknown } | null)?.webhookIds;
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => !Number.isInteger(Number(id)))) return undefined;
    return ids.map(Number);
  };
  /** The next webhook id: counting up across the sites from 1000. */
  const nextId = (site: JiraSite): number => Math.max(999, ...site.webhooks.keys()) + 1;

  const register = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): FastifyReply => {
    const body = (request.body ?? {}) as { url?: unknown; webhooks?: unknown };
    const { site } = caller;
    if (typeof body.url !== "string" || body.url === "") return jiraSend(res, 400, errorCollection([], { url: "The webhook URL must be provided." }));
    if (!Array.isArray(body.webhooks) || body.webhooks.length === 0) return jiraSend(res, 400, errorCollection([], { webhooks: "At least one webhook must be provided." }));
    // [UNCERTAIN] Jira's wording for the next two; it refuses a URL that is not the app's (one URL per app).
    if (!isLoopbackUrl(body.url)) return jiraSend(res, 400, errorCollection([`The webhook URL '${body.url.slice(0, 200)}' is not allowed: this sandbox delivers to loopback addresses only (127.0.0.0/8, ::1, localhost).`]));
    const current = live(site);
    if (current.some((w) => w.url !== body.url)) return jiraSend(res, 400, errorCollection(["Only one URL per app is allowed to be registered."]));
    const results = body.webhooks.map((given: unknown) => {
      const w = (given ?? {}) as { events?: unknown; jqlFilter?: unknown; fieldIdsFilter?: unknown; issuePropertyKeysFilter?: unknown };
      const errors: string[] = [];
      if (!Array.isArray(w.events) || w.events.length === 0) errors.push("The webhook must have at least one event.");
      else for (const e of w.events) if (typeof e !== "string" || !EVENTS.has(e)) errors.push(`The event '${String(e)}' is not supported.`);
      if (typeof w.jqlFilter !== "string" || w.jqlFilter.trim() === "") errors.push("The JQL filter is required.");
      else errors.push(...ctx.issues.filterProblems(site, w.jqlFilter));
      if (w.fieldIdsFilter !== undefined && (!Array.isArray(w.fieldIdsFilter) || w.fieldIdsFilter.some((f) => typeof f !== "string"))) errors.push("The field IDs filter must be a list of field IDs.");
      if (w.issuePropertyKeysFilter !== undefined && (!Array.isArray(w.issuePropertyKeysFilter) || w.issuePropertyKeysFilter.some((f) => typeof f !== "string"))) errors.push("The issue property keys filter must be a list of keys.");
      if (errors.length === 0 && live(site).filter((x) => x.ownerId === ctx.owner.accountId).length >= WEBHOOKS_PER_USER) errors.push(`The maximum number of webhooks (${WEBHOOKS_PER_USER}) for this app and user has been reached.`);
      if (errors.length > 0) return { errors };
      const record: WebhookRecord = {
        id: nextId(site),
        url: body.url as string,
        events: [...new Set(w.events as string[])],
        jqlFilter: w.jqlFilter as string,
        ...(w.fieldIdsFilter ? { fieldIdsFilter: [...(w.fieldIdsFilter as string[])] } : {}),
        ...(w.issuePropertyKeysFilter ? { issuePropertyKeysFilter: [...(w.issuePropertyKeysFilter as string[])] } : {}),
        expiresAt: now() + WEBHOOK_TTL_MS,
        ownerId: ctx.owner.accountId,
      };
      site.webhooks.set(record.id, record);
      return { createdWebhookId: record.id };
    });
    return jiraSend(res, 200, { webhookRegistrationResult: results });
  };
  const list = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): FastifyReply => {
    const q = queryParams(request);
    const startAt = q.startAt === undefined ? 0 : Number(q.startAt);
    const maxResults = Math.min(q.maxResults === undefined ? LIST_PAGE : Number(q.maxResults), LIST_PAGE);
    if (!Number.isInteger(startAt) || startAt < 0) return jiraSend(res, 400, errorCollection([`The value '${q.startAt}' is invalid for the parameter startAt.`]));
    if (!Number.isInteger(maxResults) || maxResults < 0) return jiraSend(res, 400, errorCollection([`The value '${q.maxResults}' is invalid for the parameter maxResults.`]));
    const all = live(caller.site);
    const values = all.slice(startAt, startAt + maxResults).map((w) => ({ id: w.id, jqlFilter: w.jqlFilter, ...(w.fieldIdsFilter ? { fieldIdsFilter: w.fieldIdsFilter } : {}), ...(w.issuePropertyKeysFilter ? { issuePropertyKeysFilter: w.issuePropertyKeysFilter } : {}), events: w.events, expirationDate: w.expiresAt }));
    return jiraSend(res, 200, { maxResults, startAt, total: all.length, isLast: startAt + values.length >= all.length, values });
  };
  const remove = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): FastifyReply => {
    const ids = idList(request.body);
    if (!ids) return jiraSend(res, 400, errorCollection([], { webhookIds: "The list of webhook IDs must not be empty." }));
    for (const id of ids) caller.site.webhooks.delete(id);
    return jiraSend(res, 202, undefined);
  };
  const refresh = (request: FastifyRequest, res: FastifyReply, caller: RestCaller): FastifyReply => {
    const ids = idList(request.body);
    if (!ids) return jiraSend(res, 400, errorCollection([], { webhookIds: "The list of webhook IDs must not be empty." }));
    const expiresAt = now() + WEBHOOK_TTL_MS;
    // An expired webhook is gone: refreshing it does nothing.
    for (const id of ids) {
      const w = caller.site.webhooks.get(id);
      if (w && w.expiresAt > now()) w.expiresAt = expiresAt;
    }
    return jiraSend(res, 200, { expirationDate: expiresAt });
  };

  // ---- deliveries ----------------------------------------------------------------

  const deliveries: Delivery[] = [];
  const queue: Delivery[] = [];
  let running = 0;
  const waiters: (() => void)[] = [];
  const pendingCount = (): number => deliveries.filter((d) => d.status === "pending").length;
  const settle = (): void => {
    if (pendingCount() > 0) return;
    for (const wake of waiters.splice(0)) wake();
  };

  const EVENT_NAMES = { created: "jira:issue_created", updated: "jira:issue_updated", deleted: "jira:issue_deleted" } as const;
  /** The deliveries an event makes: one per URL, naming every webhook of it that matched. */
  const deliveriesOf = (event: IssueEvent): Delivery[] => {
    const webhookEvent = EVENT_NAMES[event.kind];
    const { site, issue } = event;
    const matched = live(site).filter((w) => {
      if (!w.events.includes(webhookEvent)) return false;
      if (event.kind === "updated" && w.fieldIdsFilter && w.fieldIdsFilter.length > 0) {
        if (!event.changelog || !event.changelog.items.some((i) => w.fieldIdsFilter?.includes(i.fieldId))) return false;
      }
      return ctx.issues.matchesFilter(site, issue, w.jqlFilter);
    });
    if (matched.length === 0) return [];
    const base = ctx.siteUrl(site);
    const caller: RestCaller = { deployment: "cloud", base, site };
    const view = ctx.issues.issueView(issue, caller, "2", "*navigable");
    const byUrl = new Map<string, number[]>();
    for (const w of matched) byUrl.set(w.url, [...(byUrl.get(w.url) ?? []), w.id]);
    return [...byUrl].map(([url, webhookIds]) => ({
      identifier: randomUUID(),
      url,
      webhookEvent,
      issueKey: issue.key,
      webhookIds,
      status: "pending" as const,
      attempts: [],
      body: {
        timestamp: now(),
        webhookEvent,
        issue_event_type_name: event.typeName,
        user: ctx.issues.userView(event.actor, caller, "2"),
        issue: { id: view.id, self: view.self, key: view.key, fields: view.fields },
        ...(event.changelog ? { changelog: { id: event.changelog.id, items: event.changelog.items } } : {}),
        matchedWebhookIds: webhookIds,
      },
    }));
  };

  const jwtFor = async (site: JiraSite): Promise<string> => {
    const seconds = Math.floor(now() / 1000);
    return new SignJWT({ context: { cloudId: site.cloudId } })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(ctx.clientId)
      .setSubject(ctx.owner.accountId)
      .setIssuedAt(seconds)
      .setExpirationTime(seconds + 300)
      .sign(new TextEncoder().encode(ctx.clientSecret));
  };
  const sites = new WeakMap<Delivery, JiraSite>();
  const attempt = async (delivery: Delivery): Promise<void> => {
    const site = sites.get(delivery) as JiraSite;
    for (let n = 0; ; n++) {
      const at = new Date().toISOString();
      let retryable: boolean;
      // The URL was checked at registration; checked again so nothing ever leaves the machine.
      if (!isLoopbackUrl(delivery.url)) {
        delivery.attempts.push({ at, error: "not a loopback URL" });
        delivery.status = "failed";
        return;
      }
      try {
        const answer = await undiciFetch(delivery.url, {
          method: "POST",
          headers: {
            "content-type": "application/json; charset=utf-8",
            authorization: `Bearer ${await jwtFor(site)}`,
            "x-atlassian-webhook-identifier": delivery.identifier,
            ...(n > 0 ? { "x-atlassian-webhook-retry": String(n) } : {}),
            "user-agent": "Atlassian Webhook HTTP Client",
          },
          body: JSON.stringify(delivery.body),
          redirect: "manual",
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        await answer.arrayBuffer().catch(() => undefined);
        delivery.attempts.push({ at, status: answer.status });
        if (answer.status >= 200 && answer.status < 300) {
          delivery.status = "delivered";
          return;
        }
        retryable = answer.status >= 500 || answer.status === 429;
      } catch (error) {
        delivery.attempts.push({ at, error: error instanceof Error ? error.message : String(error) });
        retryable = true;
      }
      const delay = ctx.retryDelaysMs[n];
      if (!retryable || delay === undefined) {
        delivery.status = "failed";
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  };
  const pump = (): void => {
    while (running < CONCURRENCY && queue.length > 0) {
      const delivery = queue.shift() as Delivery;
      running += 1;
      void attempt(delivery)
        .catch(() => {
          delivery.status = "failed";
        })
        .finally(() => {
          running -= 1;
          pump();
          settle();
        });
    }
  };
  /** The deliveries of these events, sent once the change's answer has left. */
  const enqueue = (events: IssueEvent[]): void => {
    for (const event of events) {
      for (const delivery of deliveriesOf(event)) {
        sites.set(delivery, event.site);
        deliveries.push(delivery);
        queue.push(delivery);
      }
    }
    if (deliveries.length > DELIVERY_LOG_LIMIT) {
      for (let i = 0; i < deliveries.length && deliveries.length > DELIVERY_LOG_LIMIT; ) {
        if ((deliveries[i] as Delivery).status !== "pending") deliveries.splice(i, 1);
        else i++;
      }
    }
    pump();
  };
  const listDeliveries = async (request: FastifyRequest, res: FastifyReply): Promise<FastifyReply> => {
    const waitMs = Math.min(Number(queryParams(request).waitMs ?? "0") || 0, 30_000);
    if (waitMs > 0 && pendingCount() > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return res.code(200).send({ pending: pendingCount(), deliveries });
  };
  const clearDeliveries = (res: FastifyReply): FastifyReply => {
    for (let i = deliveries.length - 1; i >= 0; i--) if ((deliveries[i] as Delivery).status !== "pending") deliveries.splice(i, 1);
    return res.code(200).send({ pending: pendingCount(), deliveries });
  };

  return { rest: { register, list, remove, refresh }, enqueue, listDeliveries, clearDeliveries };
}
