/**
 * What a connector declares. A connector folder holds only what is particular
 * to its provider: endpoints, scopes, how its tokens look, its token and
 * who-am-I calls, how its errors map to the five types, and its retry budget.
 * Everything else (state, PKCE, storage, retries, health) is the shared
 * lifecycle's, proven once for all connectors by the contract suite.
 */
import type { IntegrationError } from "./errors.js";
import type { ProviderHttp, ResponseClassifier } from "./http.js";
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

/** What a connector's revoke call achieved; a failure is thrown instead. */
export type RevokeOutcome = "revoked" | "not_supported";

export interface ConnectorDefinition<TAuthMethod extends string = string> {
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
  /** Origins beyond the configured endpoints that this connector's credentials may be sent to (regional hosts). */
  extraOrigins?(settings: ConnectorSettings): readonly string[];
  readonly retryPolicy: RetryPolicy;
  readonly classify: ResponseClassifier;

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
  /** The provider's who-am-I call with this credential. */
  whoAmI(ctx: ConnectorContext, input: { accessToken: string; authMethod: string; metadata: Record<string, unknown> }): Promise<Identity>;
}
