/**
 * Connecting an account: an OAuth flow begun (state sealed, PKCE, browser
 * binding) and completed (authorization response, state, who completes it,
 * code exchange, who-am-I, storage), or a key or token the user pastes.
 * A grant that cannot be stored is revoked rather than left live.
 */
import { identify } from "./call.js";
import type { ConnectorDefinition, ConnectorSettings, Identity, TokenGrant } from "./connector.js";
import { toPublic, type ConnectionPublic } from "./connections.js";
import type { Tier1OAuthStartResult } from "./contract.js";
import { checkBaseUrl } from "./baseUrl.js";
import { ErrorCodes, IntegrationError, invalidInput } from "./errors.js";
import { maskSecret } from "./mask.js";
import { describeIssues } from "./publicShapes.js";
import {
  buildUrl,
  checkCompletion,
  checkReturnTo,
  codeChallengeS256,
  createCodeVerifier,
  isBrowserBinding,
  OAUTH_STATE_TTL_SECONDS,
  openState,
  readAuthorizationResponse,
  returnToOf as returnToOfState,
  sealState,
} from "./oauth.js";
import type { Session } from "./session.js";
import { checkUserId } from "./userId.js";
import type { ConnectionRecord } from "./vault.js";

/** Codes and pasted tokens longer than this are not real ones. */
const MAX_CREDENTIAL_LENGTH = 4096;

export function beginOAuth(session: Session, userId: string, options?: { returnTo?: string; browserBinding?: string }): Tier1OAuthStartResult {
  const { definition, deps, provider, clock } = session;
  checkUserId(userId, provider);
  const returnTo = options?.returnTo === undefined ? undefined : checkReturnTo(options.returnTo, deps.returnUrlAllowlist ?? [], provider);
  const browserBinding = options?.browserBinding;
  if (browserBinding !== undefined && !isBrowserBinding(browserBinding)) {
    throw invalidInput("browserBinding", "must be 43 to 128 base64url characters (use createBrowserBinding())", provider);
  }
  const codeVerifier = definition.pkce ? createCodeVerifier() : undefined;
  const { state } = sealState(deps.sealer, {
    provider,
    userId,
    nowMs: clock.now(),
    ttlSeconds: OAUTH_STATE_TTL_SECONDS,
    ...(codeVerifier ? { codeVerifier } : {}),
    ...(returnTo ? { returnTo } : {}),
    ...(browserBinding !== undefined ? { browserBinding } : {}),
  });
  const authUrl = buildUrl(deps.settings.endpoints.authorizeUrl, {
    ...definition.authorizationParams(deps.settings),
    state,
    ...(codeVerifier ? { code_challenge: codeChallengeS256(codeVerifier), code_challenge_method: "S256" } : {}),
  });
  return { authUrl, state, expiresInSeconds: OAUTH_STATE_TTL_SECONDS, ...(codeVerifier ? { codeVerifier } : {}) };
}

export function returnToOf(session: Session, state: string | null): string | undefined {
  const { deps, provider } = session;
  return returnToOfState(deps.sealer, { provider, state });
}

export async function completeOAuth(
  session: Session,
  params: { code: string; state: string; userId?: string; iss?: string; browserBinding?: string },
): Promise<ConnectionPublic> {
  const { provider } = session;
  checkCredential("code", params.code, provider);
  checkCredential("state", params.state, provider);
  if (params.iss !== undefined) checkCredential("iss", params.iss, provider);
  if (params.userId !== undefined) checkUserId(params.userId, provider);
  if (params.browserBinding !== undefined) checkCredential("browserBinding", params.browserBinding, provider);
  const response = new URLSearchParams({ code: params.code, state: params.state, ...(params.iss !== undefined ? { iss: params.iss } : {}) });
  return complete(session, response, {
    ...(params.userId !== undefined ? { userId: params.userId } : {}),
    ...(params.browserBinding !== undefined ? { browserBinding: params.browserBinding } : {}),
    viaCallback: false,
  });
}

export async function completeOAuthCallback(session: Session, query: URLSearchParams, options?: { browserBinding?: string }): Promise<ConnectionPublic> {
  const { provider } = session;
  for (const field of ["code", "state", "iss"]) {
    const value = query.get(field);
    if (value !== null) checkCredential(field, value, provider);
  }
  // A cookie is whatever the browser sent: one that is not a binding is simply not this flow's.
  const browserBinding = options?.browserBinding;
  return complete(session, query, { ...(browserBinding !== undefined ? { browserBinding } : {}), viaCallback: true });
}

export async function connectApiKey(
  session: Session,
  params: { userId: string; apiKey?: string; accessToken?: string; baseUrl?: string; email?: string },
): Promise<ConnectionPublic> {
  const { definition, deps, provider, contextFor } = session;
  checkUserId(params.userId, provider);
  if (params.apiKey !== undefined) checkCredential("apiKey", params.apiKey, provider);
  if (params.accessToken !== undefined) checkCredential("accessToken", params.accessToken, provider);
  const baseUrl = params.baseUrl === undefined ? undefined : await checkedBaseUrl(session, params.baseUrl);
  if (params.email !== undefined) checkCredential("email", params.email, provider);
  const parsed = definition.parseApiKey({
    ...(params.apiKey !== undefined ? { apiKey: params.apiKey } : {}),
    ...(params.accessToken !== undefined ? { accessToken: params.accessToken } : {}),
    ...(baseUrl !== undefined ? { baseUrl } : {}),
    ...(params.email !== undefined ? { email: params.email } : {}),
  });
  const identity = await identify(definition, contextFor(baseUrl), {
    accessToken: parsed.token,
    authMethod: parsed.authMethod,
    metadata: parsed.metadata ?? {},
    ...(parsed.scopes ? { scopes: parsed.scopes } : {}),
  });
  const record = await storeConnection(session, {
    userId: params.userId,
    authMethod: parsed.authMethod,
    accessToken: parsed.token,
    ...(identity.expiresInSeconds === undefined ? {} : { expiresInSeconds: identity.expiresInSeconds }),
    scopes: identity.scopes ?? parsed.scopes ?? [],
    metadata: { ...parsed.metadata, ...identity.metadata },
    ...(baseUrl !== undefined ? { baseUrl } : {}),
  });
  await session.recordHealth(record);
  deps.logger?.info({ connectionId: record.id, userId: record.userId, authMethod: parsed.authMethod }, "connection created with a key");
  return toPublic(record);
}

async function storeConnection(session: Session, input: {
  userId: string;
  authMethod: string;
  accessToken: string;
  refreshToken?: string;
  expiresInSeconds?: number;
  scopes: string[];
  metadata: Record<string, unknown>;
  baseUrl?: string;
}): Promise<ConnectionRecord> {
  const { definition, deps, provider, name, clock, nowIso } = session;
  const missing = definition.requiredMetadata.filter((key) => input.metadata[key] === undefined || input.metadata[key] === null);
  if (missing.length > 0) {
    throw new IntegrationError({
      type: "upstream",
      code: ErrorCodes.UNPARSABLE_RESPONSE,
      provider,
      message: `${name} did not tell us ${missing.join(", ")} for this credential`,
    });
  }
  // What the connection will answer must be what its schema says (publicShapes.ts): checked before it is stored.
  const described = definition.metadataSchema.safeParse({ scopes: input.scopes, ...input.metadata });
  if (!described.success) {
    throw new IntegrationError({
      type: "upstream",
      code: ErrorCodes.UNPARSABLE_RESPONSE,
      provider,
      message: `what ${name} told us of this credential does not fit its connection: ${describeIssues(described.error.issues)}`,
    });
  }
  const now = clock.now();
  const expiresAt = input.expiresInSeconds === undefined ? undefined : new Date(now + input.expiresInSeconds * 1000).toISOString();
  return deps.vault.createConnection({
    userId: input.userId,
    provider,
    authMethod: input.authMethod,
    tokenMasked: maskSecret(input.accessToken),
    scopes: input.scopes,
    metadata: input.metadata,
    accessToken: input.accessToken,
    ...(input.refreshToken === undefined ? {} : { refreshToken: input.refreshToken }),
    ...(expiresAt === undefined ? {} : { accessTokenExpiresAt: expiresAt, accessTokenIssuedAt: new Date(now).toISOString() }),
    // Refresh only matters for tokens that expire and can be renewed (a pasted token that expires cannot).
    tokenRefreshStatus: expiresAt !== undefined && input.refreshToken !== undefined ? "healthy" : "not_applicable",
    createdAt: nowIso(),
    ...(input.baseUrl === undefined ? {} : { baseUrl: input.baseUrl }),
  });
}

/**
 * Checks the authorization response, the state and who completes it, exchanges the code, stores the
 * connection. `proof`: the user the caller authenticated, the browser binding presented, and whether
 * this is the bearer-less callback.
 */
async function complete(session: Session, response: URLSearchParams, proof: { userId?: string; browserBinding?: string; viaCallback: boolean }): Promise<ConnectionPublic> {
  const { definition, deps, provider, name, clock, ctx } = session;
  const { userId } = proof;
  const { code, state } = readAuthorizationResponse(response, { provider, displayName: name, issuer: issuerOf(definition, deps.settings) });
  const opened = openState(deps.sealer, {
    provider,
    state,
    nowMs: clock.now(),
    knownProviders: deps.knownProviders,
    ...(userId !== undefined ? { userId } : {}),
  });
  // Before the state is used up and the code spent: a refused completion leaves the user's flow open.
  checkCompletion(opened, { provider, ...proof });
  const firstUse = await deps.vault.consumeOAuthState({ stateHash: opened.hash, provider, expiresAt: opened.expiresAt.toISOString() });
  if (!firstUse) {
    throw new IntegrationError({
      type: "schema",
      code: ErrorCodes.STATE_REUSED,
      field: "state",
      provider,
      message: "state has already been used; start the connection again",
    });
  }
  const grant = await definition.exchangeCode(ctx, { code, ...(opened.codeVerifier ? { codeVerifier: opened.codeVerifier } : {}) });
  // The code is spent: from here on a transient failure to describe the grant must not lose it
  // (it is stored when the token response told enough), and a grant that cannot be stored is
  // revoked rather than left live at the provider with nobody holding it.
  let identity: Identity | undefined;
  let identityError: IntegrationError | undefined;
  let record: ConnectionRecord;
  try {
    try {
      identity = await identify(definition, ctx, { accessToken: grant.accessToken, authMethod: definition.oauthAuthMethod, metadata: grant.metadata, scopes: grant.scopes });
    } catch (error) {
      if (!(error instanceof IntegrationError) || !error.retryable) throw error;
      identityError = error;
      deps.logger?.warn({ err: error.message }, "who-am-I failed after a successful code exchange; storing the grant");
    }
    record = await storeConnection(session, {
      userId: opened.userId,
      authMethod: definition.oauthAuthMethod,
      accessToken: grant.accessToken,
      ...(grant.refreshToken === undefined ? {} : { refreshToken: grant.refreshToken }),
      ...(grant.expiresInSeconds === undefined ? {} : { expiresInSeconds: grant.expiresInSeconds }),
      scopes: identity?.scopes ?? grant.scopes,
      metadata: { ...grant.metadata, ...identity?.metadata },
    });
  } catch (error) {
    throw await abandonGrant(session, grant, opened.userId, identityError ?? error);
  }
  await session.recordHealth(record, identityError);
  deps.logger?.info({ connectionId: record.id, userId: record.userId }, "connection created through OAuth");
  return toPublic(record);
}

/** A user-supplied base URL, checked by the guard, or a schema error saying why not. */
async function checkedBaseUrl(session: Session, value: string): Promise<string> {
  const { definition, deps, provider, name } = session;
  if (!definition.acceptsBaseUrl) throw invalidInput("baseUrl", `${name} does not take a base URL`, provider);
  if (!deps.baseUrlPolicy) throw new Error(`${provider}: no base-URL policy configured`);
  return checkBaseUrl(value, deps.baseUrlPolicy, { provider });
}

/** Revokes a grant that could not be stored (best effort) and says so in the error. */
async function abandonGrant(session: Session, grant: TokenGrant, userId: string, cause: unknown): Promise<unknown> {
  const { definition, deps, provider, ctx, nowIso } = session;
  if (!(cause instanceof IntegrationError)) return cause;
  const now = nowIso();
  const unsaved: ConnectionRecord = {
    id: "unsaved",
    userId,
    provider,
    authMethod: definition.oauthAuthMethod,
    tokenMasked: maskSecret(grant.accessToken),
    scopes: grant.scopes,
    metadata: grant.metadata,
    hasRefreshToken: grant.refreshToken !== undefined,
    tokenRefreshStatus: "not_applicable",
    createdAt: now,
    updatedAt: now,
    version: 0,
  };
  let outcome = "and could not be revoked; revoke the app's access at the provider";
  try {
    const revoked = await definition.revoke(ctx, { connection: unsaved, accessToken: grant.accessToken, ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}) });
    outcome = revoked === "revoked" ? "so the grant was revoked again" : "and the provider cannot revoke it; revoke the app's access there";
  } catch {
    // Reported in the message below.
  }
  deps.logger?.warn({ err: cause.message }, "a grant could not be stored after the code exchange");
  return new IntegrationError({
    type: cause.type,
    ...(cause.code !== undefined ? { code: cause.code } : {}),
    ...(cause.status !== undefined ? { status: cause.status } : {}),
    provider,
    message: `${cause.message}; the connection was not stored ${outcome}`,
    cause,
  });
}


/**
 * The issuer identifier (RFC 9207) the authorization response may name: the
 * provider's own in live mode (or the origin of a self-hosted authorize
 * URL), the sandbox's origin in sandbox mode.
 */
function issuerOf(definition: ConnectorDefinition, settings: ConnectorSettings): string {
  if (settings.mode === "sandbox" && settings.sandboxUrl) return settings.sandboxUrl;
  const origin = new URL(settings.endpoints.authorizeUrl).origin;
  return definition.issuers?.find((issuer) => new URL(issuer).origin === origin) ?? origin;
}

function checkCredential(field: string, value: unknown, provider: string): void {
  if (typeof value !== "string" || value.trim() === "") throw invalidInput(field, `${field} must be a non-empty string`, provider);
  if (value.length > MAX_CREDENTIAL_LENGTH) throw invalidInput(field, `${field} must be at most ${MAX_CREDENTIAL_LENGTH} characters`, provider);
  if (/[\s\p{Cc}]/u.test(value)) throw invalidInput(field, `${field} must not contain whitespace or control characters`, provider);
}
