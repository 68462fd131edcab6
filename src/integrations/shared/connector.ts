/**
 * What a connector declares. A connector folder holds only what is particular
 * to its provider: endpoints, scopes, how its tokens look, its token and
 * who-am-I calls, how its errors map to the five types, and its retry budget.
 * Everything else (state, PKCE, storage, retries, health) is the shared
 * lifecycle's, proven once for all connectors by the contract suite.
 */
import type { z } from "zod";
import type { IntegrationError } from "./errors.js";
import type { HttpMethod, ProviderHttp, ProviderResponse, ResponseClassifier } from "./http.js";
import type { RateLimitReader } from "./rateSignal.js";
import type { RetryPolicy } from "./retry.js";
import type { ConnectionRecord } from "./vault.js";

/** Where a connector sends its requests. Every one is configuration. */
export type ConnectorEndpoints = {
  authorizeUrl: string;
  tokenUrl: string;
  revokeUrl?: string;
  /** Base of API calls; paths are appended to it. */
  apiUrl: string;
};

/** A connector-specific setting, read from the environment. */
export type ConnectorOption = {
  default: string;
  /** What a valid value looks like; a value that does not match is a configuration error. */
  pattern: RegExp;
  description: string;
};

/** A connector's runtime settings: live provider or its sandbox. */
export type ConnectorSettings = {
  mode: "live" | "sandbox";
  /** Values of the connector's declared options (defaults filled in). */
  options: Readonly<Record<string, string>>;
  clientId: string;
  clientSecret: string;
  endpoints: ConnectorEndpoints;
  /** `${AUTOFLOW_PUBLIC_URL}/api/integrations/<provider>/oauth/callback` */
  redirectUri: string;
  scopes: readonly string[];
  /** The sandbox's origin, in sandbox mode. */
  sandboxUrl?: string;
};

/** A successful token response, reduced to what the lifecycle stores. */
export type TokenGrant = {
  accessToken: string;
  refreshToken?: string;
  /** Seconds until the access token expires; undefined when it does not. */
  expiresInSeconds?: number;
  scopes: string[];
  /** Public fields the token response already tells (Slack's team, Stripe's account). */
  metadata: Record<string, unknown>;
};

/** What the who-am-I call tells about a credential. */
export type Identity = {
  /** Public fields (teamId, accountId, ...). */
  metadata: Record<string, unknown>;
  /** Granted scopes, when the call reveals them. */
  scopes?: string[];
  /** What `testConnection` answers, beyond the connection id: flat strings for a UI. */
  summary: Record<string, string | undefined>;
  /** Seconds the credential has left, when the provider says so (a pasted token that cannot be refreshed). */
  expiresInSeconds?: number;
};

/** A credential the user pasted, recognised. */
export type ParsedApiKey<TAuthMethod extends string> = {
  token: string;
  authMethod: TAuthMethod;
  /** Public fields known from the key itself (Stripe's livemode from sk_live_/sk_test_). */
  metadata?: Record<string, unknown>;
  scopes?: string[];
};

export type ConnectorContext = {
  settings: ConnectorSettings;
  /** Bound to the origins this credential may reach: the configured endpoints, or the connection's base URL. */
  http: ProviderHttp;
  /** The user-supplied instance (self-hosted Sentry, Jira site or Data Center), already checked by the guard. */
  baseUrl?: string;
};

/** The fields `connectApiKey` (POST .../connections) takes beside the user: the key or token, and the instance and email where a provider needs them. */
export const CONNECT_FIELDS = ["apiKey", "accessToken", "baseUrl", "email"] as const;

/** Only the `CONNECT_FIELDS` of a credential a provider's dashboard (or a sandbox's desk) describes. */
export function connectFieldsOf(credential: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(credential).filter(([key]) => (CONNECT_FIELDS as readonly string[]).includes(key)));
}

/** What a call needs to know of the connection it is made with. */
export type CallTarget = {
  authMethod: string;
  metadata: Record<string, unknown>;
  /** The user-supplied instance, when the connection has one. */
  baseUrl?: string;
  /** The granted scopes, when known. */
  scopes?: readonly string[];
};

/** A connection's credential as a call authorizes itself with it. */
export type Credential = CallTarget & { accessToken: string };

/**
 * One call through a connection. `path` is relative to the connection's API
 * base (`/v1/account`); `url` is for a connector's own calls beyond it
 * (Google's tokeninfo, HubSpot's introspection), still held to the
 * connector's origins. The connector's `authorize` adds the credential.
 */
export type ApiCall = {
  /** A short name for logs and messages; `METHOD path` when left out. */
  operation?: string;
  method: HttpMethod;
  path?: string;
  url?: string;
  /** Appended to the path's own query; an array repeats the parameter. */
  query?: Readonly<Record<string, string | readonly string[]>>;
  headers?: Readonly<Record<string, string>>;
  form?: Record<string, string | undefined>;
  json?: unknown;
  /** A body sent as given, with the caller's content-type (the proxy). */
  body?: string | Uint8Array;
  idempotent?: boolean;
  expectJson?: boolean;
  /** The largest answer read (the proxy's bound). */
  maxResponseBytes?: number;
  /** A redirect or 304 is an answer to hand back (never followed), not a failure (the proxy's). */
  passRedirects?: boolean;
  /** False for a call that carries its own authentication (client credentials in a form). */
  authorize?: boolean;
  /** Secrets beyond the access token that the call carries (scrubbed from messages). */
  secrets?: readonly (string | undefined)[];
};

/** Sends one call with the credential at hand; resolves with a successful answer or rejects with an IntegrationError. */
export type CallSender = (call: ApiCall) => Promise<ProviderResponse>;

/**
 * The who-am-I call as a request and the processing of its answer (the
 * pairing oauth4webapi uses): the session sends the request like any other
 * call, so the connector neither authorizes nor sends it.
 */
export type WhoAmI = {
  request(credential: Credential, settings: ConnectorSettings): ApiCall;
  process(response: ProviderResponse, credential: Credential, settings: ConnectorSettings): Identity;
  /**
   * What a refusal of the request means for this provider: another way to
   * identify the credential (Gmail's send-only grant, through tokeninfo), or
   * a clearer error (Jira's 404: the wrong deployment). Throws when there is
   * no other way.
   */
  recover?(error: IntegrationError, send: CallSender, credential: Credential, settings: ConnectorSettings): Promise<Identity>;
};

/** What a grant-describing step adds to who-am-I: the fields a connection's calls need and the probe does not tell. */
export type GrantDescription = {
  metadata?: Record<string, unknown>;
  scopes?: string[];
  summary?: Record<string, string | undefined>;
};

/** What a connector's revoke call achieved; a failure is thrown instead. */
export type RevokeOutcome = "revoked" | "not_supported";

/** The public metadata of a connector's connections, as its zod object: the one source of their fields (types, checks, OpenAPI). */
export type MetadataSchema = z.ZodObject<z.ZodRawShape>;

export interface ConnectorDefinition<TAuthMethod extends string = string, TMetadata extends MetadataSchema = MetadataSchema> {
  /** Lower-case id used in URLs and configuration (`slack`). */
  readonly id: string;
  readonly displayName: string;
  /** Every `authMethod` a connection of this provider can have. */
  readonly authMethods: readonly TAuthMethod[];
  /** The `authMethod` of connections made through OAuth. */
  readonly oauthAuthMethod: TAuthMethod;
  /**
   * The real provider's endpoints, used unless configuration overrides them.
   * A function when they depend on the connector's options (a tenant, a region).
   */
  readonly liveEndpoints: ConnectorEndpoints | ((options: Readonly<Record<string, string>>) => ConnectorEndpoints);
  /**
   * Settings of this connector beyond the common ones, each read from
   * `AUTOFLOW_<PROVIDER>_<NAME>` (e.g. Microsoft's tenant), with its default.
   */
  readonly options?: Readonly<Record<string, ConnectorOption>>;
  /** Issuer identifiers the provider may send as `iss` (RFC 9207), live mode. */
  readonly issuers?: readonly string[];
  readonly pkce: boolean;
  readonly defaultScopes: readonly string[];
  /**
   * The connection's public metadata beside the contract's fields (scopes, the account's ids and
   * names): what `listConnections` answers and health carries (partially). Its required keys
   * must include `requiredMetadata`.
   */
  readonly metadataSchema: TMetadata;
  /** Public metadata keys that must be present for a connection to be stored. */
  readonly requiredMetadata: readonly string[];
  /** Metadata keys that name the account to a person (the first one present wins); `requiredMetadata` when left out. */
  readonly accountLabel?: readonly string[];
  /**
   * Whether `connectApiKey` takes a user-supplied `baseUrl` (a self-hosted or
   * per-site instance). The lifecycle checks it with the base-URL guard and
   * binds the credential to it for good.
   */
  readonly acceptsBaseUrl?: boolean;
  /** Whether `connectApiKey` takes the account's `email` with the key (Jira Cloud API tokens, sent as Basic email:token). */
  readonly acceptsEmail?: boolean;
  /** Origins beyond the configured endpoints that this connector's credentials may be sent to (regional hosts). */
  extraOrigins?(settings: ConnectorSettings): readonly string[];
  readonly retryPolicy: RetryPolicy;
  readonly classify: ResponseClassifier;
  /** Reads the provider's rate-limit headers off any answer, for the pacer. */
  readonly rateLimit?: RateLimitReader;
  /** Which of the account's budgets a call spends, where the provider limits per method or endpoint (Slack, Sentry); one per account when left out. */
  paceScope?(call: ApiCall): string | undefined;
  /**
   * Whose budget a call spends: the provider account's (its `requiredMetadata`:
   * a Slack team, a HubSpot hub), shared by every connection to it; or each
   * connection's own, where the provider counts per user or token (Linear,
   * Sentry). The account's when left out.
   */
  readonly paceBy?: "account" | "connection";
  /**
   * Whether one connection of a connector paced by account spends a budget of its own all the same:
   * HubSpot's private apps, each of which has its own burst limit whatever the account.
   */
  paceOwnBudget?(target: CallTarget): boolean;

  /** The headers that authorize a call with this credential; `Authorization: Bearer <token>` when left out. */
  authorize?(credential: Credential): Record<string, string>;
  /** The base a connection's call paths are relative to; its instance's URL, or the configured `apiUrl`, when left out. */
  apiBase?(target: CallTarget, settings: ConnectorSettings): string;
  /**
   * The request header (lower case) by which this provider makes a repeated
   * POST or PATCH safe: it answers a repeat with the first answer (Stripe's
   * `idempotency-key`). Only then is such a call retried after a network
   * error or 5xx; at a provider that ignores the header a repeat would write twice.
   */
  readonly idempotencyKeyHeader?: string;
  /** Request headers of this provider that a proxied call may not set (lower case): ones that choose another account to act as. */
  readonly proxyForbiddenHeaders?: readonly string[];

  /** Query parameters of the authorization URL, beyond state and PKCE (added by the lifecycle). */
  authorizationParams(settings: ConnectorSettings): Record<string, string | undefined>;
  exchangeCode(ctx: ConnectorContext, input: { code: string; codeVerifier?: string }): Promise<TokenGrant>;
  /** Provider without refresh tokens leave this out. */
  refreshToken?(ctx: ConnectorContext, refreshToken: string): Promise<TokenGrant>;
  /** Revokes the credential at the provider, if it can be. */
  revoke(ctx: ConnectorContext, input: { connection: ConnectionRecord; accessToken: string; refreshToken?: string }): Promise<RevokeOutcome>;
  /**
   * Recognises a pasted key or token, or throws a schema error naming the
   * field. `baseUrl` (guarded, normalised) and `email` come with it for
   * connectors that take them.
   */
  parseApiKey(input: { apiKey?: string; accessToken?: string; baseUrl?: string; email?: string }): ParsedApiKey<TAuthMethod>;
  /**
   * Whether an auth error means "this access token is no longer good" (so a
   * refresh may cure it), as opposed to a missing scope or a revoked grant.
   * Defaults to HTTP 401.
   */
  isTokenRejection?(error: IntegrationError): boolean;
  /** The provider's who-am-I call: the probe of every test and health check. */
  readonly whoAmI: WhoAmI;
  /**
   * Where a new grant's calls go, found before who-am-I when the API base
   * depends on it (Jira's accessible resources give the cloud id). A stored
   * connection already knows; the connector decides when it has work to do.
   */
  locateGrant?(send: CallSender, credential: Credential, settings: ConnectorSettings): Promise<GrantDescription>;
  /**
   * What who-am-I does not tell, asked after it succeeded (HubSpot's
   * introspection gives the user, app and scopes; Google's tokeninfo a
   * pasted token's scopes). The connector decides when it has work to do.
   */
  describeGrant?(send: CallSender, credential: Credential, identity: Identity, settings: ConnectorSettings): Promise<GrantDescription>;
}
