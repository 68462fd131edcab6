/**
 * Builds a {@link Tier1ConnectorLifecycle} from a connector's declaration:
 * the only place that sequences OAuth, storage, provider calls and health;
 * connectors never do. Each hook lives in the file of its part, all sharing
 * one session of the connector:
 *
 *   session.ts      the provider client, the token keeper, the who-am-I probe
 *   connect.ts      beginOAuth, completeOAuth, completeOAuthCallback, connectApiKey
 *   connections.ts  listConnections, the public shape, picking a connection
 *   health.ts       testConnection, health (recorded by the session, in one place)
 *   disconnect.ts   disconnect, owed revocations
 *   proxy.ts        request: one authenticated call relative to the connection's API base
 *   action.ts       actions: the connector's typed operations, each in its folder's actions/
 */
import { connectionContext, runAction, type ActionContext, type ActionMap, type ActionRunners } from "./action.js";
import { beginOAuth, completeOAuth, completeOAuthCallback, connectApiKey, returnToOf } from "./connect.js";
import { listConnections, pickConnection, type ConnectionPublic } from "./connections.js";
import { connectionRevoked } from "./errors.js";
import { checkUserId } from "./userId.js";
import type { ConnectorDefinition, ConnectorSettings } from "./connector.js";
import { connectionSchemaOf, healthSchemaOf, readPublic, type ConnectionHealthOf, type ConnectionPublicOf } from "./publicShapes.js";
import type { Tier1ConnectorLifecycle, Tier1OAuthStartResult } from "./contract.js";
import { disconnectWithReport, retryRevocation, type DisconnectReport, type ProviderRevocation } from "./disconnect.js";
import { checkHealth, health, recordedHealth, testConnection, type ConnectionHealth } from "./health.js";
import { DEFAULT_PROXY_LIMITS, proxyRequest, type ProxyAnswer, type ProxyInput } from "./proxy.js";
import { createSession, type LifecycleDeps } from "./session.js";
import type { ConnectionRecord, StoredHealth } from "./vault.js";

export type { ConnectionPublic } from "./connections.js";
export type { ConnectionHealth } from "./health.js";
export type { DisconnectReport, ProviderRevocation } from "./disconnect.js";
export type { LifecycleDeps } from "./session.js";
export type { ProxyAnswer, ProxyInput } from "./proxy.js";

/** The contract's lifecycle plus additive options (minor-release extensions). */
export interface ConnectorLifecycle<TPublic = ConnectionPublic, THealth = ConnectionHealth, TActions extends ActionMap = ActionMap>
  extends Tier1ConnectorLifecycle<TPublic, THealth> {
  readonly id: string;
  readonly definition: ConnectorDefinition;
  readonly settings: ConnectorSettings;
  /** The connector's typed operations, as declared (schemas and all). */
  readonly actionMap: TActions;
  /** Each action, typed from its schemas: `actions.postMessage(userId, input)`. */
  readonly actions: ActionRunners<TActions>;
  /** An action by name (the HTTP route's): the input checked against its schema, the output against its own. */
  runAction(userId: string, name: string, input: unknown, options?: { connectionId?: string }): Promise<unknown>;
  /**
   * `returnTo`: where the callback sends the browser afterwards; it must be on the operator's allow-list.
   * `browserBinding` (from `createBrowserBinding`, kept in the user's browser, e.g. an HttpOnly cookie):
   * the flow can then be completed only with it or with the user's identity (RFC 9700 §4.5).
   */
  beginOAuth(userId: string, options?: { returnTo?: string; browserBinding?: string }): Tier1OAuthStartResult;
  /** The return address sealed in a state this connector issued (undefined for any other). */
  returnToOf(state: string | null): string | undefined;
  /** `baseUrl` (self-hosted or per-site instance) and `email` (Jira API tokens) for connectors that take them. */
  connectApiKey(params: { userId: string; apiKey?: string; accessToken?: string; baseUrl?: string; email?: string }): Promise<TPublic>;
  /**
   * `userId` binds the completion to the caller (who authenticated that user); `browserBinding` is the
   * one the flow was begun with; `iss` is the callback's RFC 9207 parameter. A flow begun with a binding
   * needs the binding or `userId`.
   */
  completeOAuth(params: { code: string; state: string; userId?: string; iss?: string; browserBinding?: string }): Promise<TPublic>;
  /**
   * The browser's bearer-less callback: the whole authorization response (code, state, iss, or error),
   * and the binding that browser holds. Without the binding the state was begun with, nothing is exchanged.
   */
  completeOAuthCallback(query: URLSearchParams, options?: { browserBinding?: string }): Promise<TPublic>;
  listConnections(userId: string, options?: { includeRevoked?: boolean }): Promise<TPublic[]>;
  testConnection(userId: string, options?: { connectionId?: string }): Promise<Record<string, string | undefined>>;
  /**
   * One probe, reported as the v1 envelope and recorded. `maxAgeMs`: the envelope last recorded is
   * answered instead when it is younger than this (a dashboard's poll), with no provider call.
   */
  health(userId: string, options?: { connectionId?: string; maxAgeMs?: number }): Promise<THealth>;
  /**
   * The user's active connections, each with the health last recorded for it (by a test, a probe, a
   * refresh or the health sweep; null before the first), read from the store: no provider call.
   */
  recordedHealth(userId: string): Promise<Array<{ connection: TPublic; health: THealth | null }>>;
  disconnectWithReport(userId: string, credentialId: string): Promise<DisconnectReport<TPublic> | undefined>;
  /**
   * Background refresh of one connection (the refresh-ahead job): once for
   * all callers and instances; "skipped" when there is nothing to refresh or
   * another caller already did.
   */
  refreshConnection(record: ConnectionRecord): Promise<"refreshed" | "skipped">;
  /** Settles a revocation owed since a disconnect could not reach the provider (the revoke-pending job). */
  retryRevocation(record: ConnectionRecord): Promise<ProviderRevocation>;
  /**
   * `health`'s probe of a connection the health sweep just scanned, recorded as `health` records it,
   * without reading the connection again or building the envelope: what was recorded.
   */
  checkHealth(record: ConnectionRecord): Promise<StoredHealth>;
  /**
   * One authenticated call with the user's newest active connection (or the
   * one named), its path relative to the connection's API base: the
   * provider's answer as it gave it, or an IntegrationError.
   */
  request(userId: string, input: ProxyInput): Promise<ProxyAnswer>;
  /**
   * Calls through one active connection of the user (the newest, or the one named), for work that
   * spans many calls (the Jira ticket sync): each refreshed, authorized, paced and classified as an
   * action's are, named `<label>: ...`. Throws as an action does for a connection that is not there or revoked.
   */
  contextFor(userId: string, label: string, options?: { connectionId?: string }): Promise<ActionContext & { userId: string }>;
}

/**
 * Every answer that carries a public shape is read through the connector's schema of it
 * (publicShapes.ts): what callers get is what the types, the OpenAPI document and the client say.
 */
export function createConnectorLifecycle<D extends ConnectorDefinition, TActions extends ActionMap = ActionMap>(
  definition: D,
  deps: LifecycleDeps,
  actionMap: TActions = {} as TActions,
): ConnectorLifecycle<ConnectionPublicOf<D>, ConnectionHealthOf<D>, TActions> {
  type TPublic = ConnectionPublicOf<D>;
  const session = createSession(definition, deps);
  const connectionSchema = connectionSchemaOf(definition);
  const healthSchema = healthSchemaOf(definition);
  const mismatch = (what: string, id: string | undefined) => (problem: string) =>
    deps.logger?.error({ connectionId: id, problem }, `a stored ${definition.id} ${what} does not match its public schema; answered as stored`);
  const publicOf = (connection: ConnectionPublic): TPublic => readPublic(connectionSchema, connection, mismatch("connection", connection.id));
  const healthOf = (envelope: ConnectionHealth, id?: string) => readPublic(healthSchema, envelope, mismatch("health envelope", id));
  const reportOf = (report: DisconnectReport | undefined): DisconnectReport<TPublic> | undefined => report && { ...report, connection: publicOf(report.connection) };
  const run = (userId: string, name: string, input: unknown, options?: { connectionId?: string }) => runAction(session, actionMap, userId, name, input, options);
  return {
    id: definition.id,
    definition,
    settings: deps.settings,
    actionMap,
    actions: Object.fromEntries(Object.keys(actionMap).map((name) => [name, (userId: string, input: unknown, options?: { connectionId?: string }) => run(userId, name, input, options)])) as ActionRunners<TActions>,
    runAction: run,
    beginOAuth: (userId, options) => beginOAuth(session, userId, options),
    returnToOf: (state) => returnToOf(session, state),
    completeOAuth: async (params) => publicOf(await completeOAuth(session, params)),
    completeOAuthCallback: async (query, options) => publicOf(await completeOAuthCallback(session, query, options)),
    connectApiKey: async (params) => publicOf(await connectApiKey(session, params)),
    listConnections: async (userId, options) => (await listConnections(session, userId, options)).map(publicOf),
    testConnection: (userId, options) => testConnection(session, userId, options),
    health: async (userId, options) => healthOf(await health(session, userId, options), options?.connectionId),
    recordedHealth: async (userId) =>
      (await recordedHealth(session, userId)).map((entry) => ({ connection: publicOf(entry.connection), health: entry.health && healthOf(entry.health, entry.connection.id) })),
    disconnectWithReport: async (userId, credentialId) => reportOf(await disconnectWithReport(session, userId, credentialId)),
    disconnect: async (userId, credentialId) => (await disconnectWithReport(session, userId, credentialId)) !== undefined,
    retryRevocation: (record) => retryRevocation(session, record),
    checkHealth: (record) => checkHealth(session, record),
    request: (userId, input) => proxyRequest(session, userId, input, deps.proxyLimits ?? DEFAULT_PROXY_LIMITS),
    async contextFor(userId, label, options) {
      checkUserId(userId, session.provider);
      const record = await pickConnection(session, userId, options?.connectionId);
      if (record.revokedAt) throw connectionRevoked(session.provider, session.name, record.id);
      return { ...connectionContext(session, record, label), userId };
    },
    async refreshConnection(record) {
      const { tokens } = session;
      if (!tokens.canRefresh(record)) return "skipped";
      const before = record.version;
      const after = await tokens.refresh(record);
      return after.version !== before ? "refreshed" : "skipped";
    },
  };
}
