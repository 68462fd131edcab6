/**
 * One call through a connection, as the connector declares it: the API base
 * its paths are relative to, and the headers its credential authorizes a
 * request with. No connector builds an Authorization header or a base URL
 * of its own; who-am-I is one more call, a request and the processing of its
 * answer.
 */
import type { ApiCall, CallSender, CallTarget, ConnectorContext, ConnectorDefinition, ConnectorSettings, Credential, Identity } from "./connector.js";
import { IntegrationError } from "./errors.js";
import type { ProviderRequest } from "./http.js";

/** The base a connection's call paths are relative to, without a trailing slash. */
export function apiBaseOf(definition: ConnectorDefinition, settings: ConnectorSettings, target: CallTarget): string {
  const base = definition.apiBase ? definition.apiBase(target, settings) : (target.baseUrl ?? settings.endpoints.apiUrl);
  return base.replace(/\/+$/, "");
}

/** The headers that authorize a call with this credential. */
export function authorizationOf(definition: ConnectorDefinition, credential: Credential): Record<string, string> {
  return definition.authorize ? definition.authorize(credential) : { authorization: `Bearer ${credential.accessToken}` };
}

/** The URL of a call: its own absolute `url`, or its path under the connection's API base, with its query. */
export function urlOf(definition: ConnectorDefinition, settings: ConnectorSettings, target: CallTarget, call: ApiCall): string {
  const url = new URL(call.url ?? `${apiBaseOf(definition, settings, target)}${call.path ?? ""}`);
  for (const [name, value] of Object.entries(call.query ?? {})) {
    for (const one of typeof value === "string" ? [value] : value) url.searchParams.append(name, one);
  }
  return url.toString();
}

/** The provider request a call becomes with this credential. */
export function toProviderRequest(definition: ConnectorDefinition, settings: ConnectorSettings, credential: Credential, call: ApiCall, paceKey?: string): ProviderRequest {
  if (call.url === undefined && call.path === undefined) throw new Error("an ApiCall needs a path or a url");
  const authorization = call.authorize === false ? {} : authorizationOf(definition, credential);
  return {
    operation: call.operation ?? `${call.method} ${call.path ?? new URL(call.url as string).pathname}`,
    method: call.method,
    url: urlOf(definition, settings, credential, call),
    // The credential's headers after the call's: a call never overrides how it is authorized.
    headers: mergeHeaders(call.headers ?? {}, authorization),
    ...(call.form ? { form: call.form } : {}),
    ...(call.json !== undefined ? { json: call.json } : {}),
    ...(call.body !== undefined ? { body: call.body } : {}),
    ...(call.idempotent !== undefined ? { idempotent: call.idempotent } : {}),
    ...(call.expectJson !== undefined ? { expectJson: call.expectJson } : {}),
    ...(call.maxResponseBytes !== undefined ? { maxResponseBytes: call.maxResponseBytes } : {}),
    ...(call.passRedirects ? { passRedirects: true } : {}),
    // The header values too: an echo of Jira's Basic email:token would not contain the token as such.
    secrets: [credential.accessToken, ...Object.values(authorization), ...(call.secrets ?? [])],
    ...(paceKey !== undefined ? { paceKey: scopedPaceKey(definition, paceKey, call) } : {}),
  };
}

function scopedPaceKey(definition: ConnectorDefinition, paceKey: string, call: ApiCall): string {
  const scope = definition.paceScope?.(call);
  return scope === undefined ? paceKey : `${paceKey}:${scope}`;
}

/**
 * The budget a connection's calls count against, as the pacer keys it: the
 * connector and the metadata that names the account (Slack's team,
 * HubSpot's hub, a Jira site and user), or the connection itself where the
 * provider counts per user or token (or, for some connections, per app).
 */
export function paceKeyOf(definition: ConnectorDefinition, target: CallTarget & { id: string }): string {
  if (definition.paceBy === "connection" || definition.paceOwnBudget?.(target)) return `${definition.id}:${target.id}`;
  return [definition.id, ...definition.requiredMetadata.map((key) => String(target.metadata[key] ?? ""))].join(":");
}

/** Header sets merged by lower-cased name, later sets winning. */
function mergeHeaders(...sets: readonly Readonly<Record<string, string>>[]): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const set of sets) for (const [name, value] of Object.entries(set)) merged[name.toLowerCase()] = value;
  return merged;
}

/** A sender of calls with one credential through the context's client (bound to the credential's origins). */
export function senderFor(definition: ConnectorDefinition, ctx: ConnectorContext, credential: Credential, paceKey?: string): CallSender {
  return (call) => ctx.http.send(toProviderRequest(definition, ctx.settings, credential, call, paceKey));
}

/** The credential of a call: the token with what the connection (or the context's instance) tells. */
export function credentialOf(
  ctx: ConnectorContext,
  input: { accessToken: string; authMethod: string; metadata: Record<string, unknown>; scopes?: readonly string[] },
): Credential {
  return {
    accessToken: input.accessToken,
    authMethod: input.authMethod,
    metadata: input.metadata,
    ...(ctx.baseUrl !== undefined ? { baseUrl: ctx.baseUrl } : {}),
    ...(input.scopes !== undefined ? { scopes: input.scopes } : {}),
  };
}

/**
 * Who a credential is: where its calls go (when the connector must find
 * out), its who-am-I request sent like any call and processed, and what the
 * connector asks beyond it.
 */
export async function identify(
  definition: ConnectorDefinition,
  ctx: ConnectorContext,
  input: { accessToken: string; authMethod: string; metadata: Record<string, unknown>; scopes?: readonly string[] },
  /** A stored connection's account, so its probes are paced with its other calls. */
  paceKey?: string,
): Promise<Identity> {
  const given = credentialOf(ctx, input);
  const located = definition.locateGrant ? await definition.locateGrant(senderFor(definition, ctx, given), given, ctx.settings) : {};
  const credential = credentialOf(ctx, {
    ...input,
    metadata: { ...input.metadata, ...located.metadata },
    ...(located.scopes ? { scopes: located.scopes } : {}),
  });
  const { whoAmI } = definition;
  const send = senderFor(definition, ctx, credential, paceKey);
  let identity: Identity;
  try {
    identity = whoAmI.process(await send(whoAmI.request(credential, ctx.settings)), credential, ctx.settings);
  } catch (error) {
    if (!(error instanceof IntegrationError) || !whoAmI.recover) throw error;
    identity = await whoAmI.recover(error, send, credential, ctx.settings);
  }
  const described = definition.describeGrant ? await definition.describeGrant(send, credential, identity, ctx.settings) : {};
  const scopes = described.scopes ?? identity.scopes ?? located.scopes;
  return {
    ...identity,
    metadata: { ...located.metadata, ...identity.metadata, ...described.metadata },
    ...(scopes ? { scopes } : {}),
    summary: { ...located.summary, ...identity.summary, ...described.summary },
  };
}
