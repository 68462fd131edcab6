/**
 * Configuration from the environment, validated once at start-up. Every bad
 * variable is reported at once, by name, with what is wrong.
 */
import { resolve } from "node:path";
import { z } from "zod";
import { CONNECTORS, PROVIDER_IDS, type ProviderId } from "./integrations/registry.js";
import type { ConnectorDefinition, ConnectorEndpoints, ConnectorSettings } from "./integrations/shared/connector.js";
import type { StartedSandbox } from "./sandbox/kit.js";
import { DEFAULT_JOB_SETTINGS, type JobSettings } from "./jobs/settings.js";
import { DEFAULT_HEALTH_MAX_AGE_SECONDS, DEFAULT_LIMITS, type ServerLimits } from "./server/limits.js";
import { MAX_HEALTH_AGE_SECONDS } from "./api/requests.js";
import { DEFAULT_PROXY_LIMITS, type ProxyLimits } from "./integrations/shared/proxy.js";

export type ProviderConfig = {
  /** Values of the connector's declared options, as set in the environment. */
  options?: Record<string, string>;
  clientId?: string;
  clientSecret?: string;
  authorizeUrl?: string;
  tokenUrl?: string;
  revokeUrl?: string;
  apiUrl?: string;
  scopes?: string[];
};

export type ServiceConfig = {
  port: number;
  host: string;
  dataDir: string;
  publicUrl: string;
  jwtSecret?: string;
  /** JWKS of the identity provider that signs user tokens (RS256 / ES256 / EdDSA). */
  jwksUrl?: string;
  jwtIssuer?: string;
  jwtAudience?: string;
  encryptionKey?: string;
  /** Old encryption keys that still decrypt while a rotation runs (`AUTOFLOW_ENCRYPTION_KEYS_OLD`, comma-separated). */
  encryptionKeysOld: string[];
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  providerTimeoutMs: number;
  /** First sandbox port (the others follow in registry order); 0 for free ports (tests). */
  sandboxBasePort: number;
  /** PostgreSQL connection string; SQLite under dataDir when unset. */
  databaseUrl?: string;
  /** PostgreSQL schema to use (created if missing); `public` when unset. */
  databaseSchema?: string;
  /** PostgreSQL connections per instance. */
  databasePoolSize: number;
  /**
   * Origins a user-supplied base URL may name even though they are not public
   * https (an operator's own self-hosted Sentry on a private network). In
   * sandbox mode the sandboxes' origins are added, and nothing else.
   */
  baseUrlAllowlist: string[];
  /** URL prefixes an OAuth flow may send the browser back to (`AUTOFLOW_OAUTH_RETURN_URLS`). */
  oauthReturnUrls: string[];
  /** Request limits of the HTTP API. */
  limits: ServerLimits;
  /** Bounds on proxied calls' bodies (`AUTOFLOW_PROXY_MAX_REQUEST_BYTES`, `AUTOFLOW_PROXY_MAX_RESPONSE_BYTES`). */
  proxyLimits?: ProxyLimits;
  /** GET .../health answers the envelope recorded within this many seconds (`AUTOFLOW_HEALTH_MAX_AGE_SECONDS`, 30); 0 probes every time. */
  healthMaxAgeSeconds?: number;
  /** Calls wait their turn in each provider account's rate budget, unless AUTOFLOW_PACING=off. */
  pacing?: boolean;
  /** The rate every sandbox enforces with its provider's headers (`AUTOFLOW_SANDBOX_RATE_LIMIT=50/1s`); none when unset. */
  sandboxRateLimit?: { requests: number; windowMs: number };
  /** The shared secret of Jira admin webhooks (`AUTOFLOW_JIRA_WEBHOOK_SECRET`): their X-Hub-Signature is checked with it. */
  jiraWebhookSecret?: string;
  /** When set, `/metrics` answers only `Authorization: Bearer <this>`. */
  metricsToken?: string;
  /** The operator view's bearer token (/admin, /api/operator/*); the view is off without one. */
  operatorToken?: string;
  /** Background jobs (refresh-ahead, health sweeps): on for `serve` unless AUTOFLOW_JOBS=off. */
  jobs: boolean;
  jobSettings: JobSettings;
  providers: Record<ProviderId, ProviderConfig>;
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** On PostgreSQL the key is the deployment's to set: a key generated per instance would be one no other instance can use. */
export const ENCRYPTION_KEY_REQUIRED =
  "AUTOFLOW_ENCRYPTION_KEY: required with DATABASE_URL (PostgreSQL): every instance must use the same key " +
  "(make one with: openssl rand -base64 32); none is generated per instance";

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits). */
export const MIN_JWT_SECRET_LENGTH = 32;
/**
 * The sandboxes listen on 4100 to 4107 (registry order) unless told
 * otherwise: stable ports, so that a base URL a connection was pinned to
 * (Sentry, Jira) still answers after a restart, and a second process finds
 * the sandboxes the first one serves.
 */
export const DEFAULT_SANDBOX_BASE_PORT = 4100;

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
const optionalString = z
  .string()
  .transform((s) => s.trim())
  .transform((s) => (s === "" ? undefined : s))
  .optional();

const baseSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  AUTOFLOW_DATA_DIR: z.string().min(1).default("./data"),
  AUTOFLOW_PUBLIC_URL: httpUrl.optional(),
  AUTOFLOW_JWT_SECRET: optionalString.pipe(z.string().min(MIN_JWT_SECRET_LENGTH, `must be at least ${MIN_JWT_SECRET_LENGTH} characters`).optional()),
  AUTOFLOW_ENCRYPTION_KEY: optionalString,
  AUTOFLOW_ENCRYPTION_KEYS_OLD: optionalString,
  AUTOFLOW_JWKS_URL: optionalString.pipe(httpUrl.optional()),
  AUTOFLOW_JWT_ISSUER: optionalString,
  AUTOFLOW_JWT_AUDIENCE: optionalString,
  AUTOFLOW_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  AUTOFLOW_PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
  AUTOFLOW_SANDBOX_BASE_PORT: z.coerce.number().int().min(0).max(65_000).default(DEFAULT_SANDBOX_BASE_PORT),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// or postgresql:// URL" }).optional()),
  AUTOFLOW_BASE_URL_ALLOWLIST: optionalString,
  AUTOFLOW_OAUTH_RETURN_URLS: optionalString,
  AUTOFLOW_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_LIMITS.bodyLimit),
  AUTOFLOW_MAX_HEADER_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024).default(DEFAULT_LIMITS.maxHeaderBytes),
  AUTOFLOW_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_LIMITS.requestsPerMinute),
  AUTOFLOW_PROXY_MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(DEFAULT_PROXY_LIMITS.maxRequestBytes),
  AUTOFLOW_PROXY_MAX_RESPONSE_BYTES: z.coerce.number().int().min(1024).max(256 * 1024 * 1024).default(DEFAULT_PROXY_LIMITS.maxResponseBytes),
  AUTOFLOW_JOBS: z.enum(["on", "off"], { error: 'must be "on" or "off"' }).default("on"),
  AUTOFLOW_METRICS_TOKEN: optionalString.pipe(z.string().min(16, "must be at least 16 characters (a bearer token the scraper sends)").optional()),
  AUTOFLOW_OPERATOR_TOKEN: optionalString.pipe(z.string().min(32, "must be at least 32 characters (the operator view's bearer token; e.g. openssl rand -hex 32)").optional()),
  AUTOFLOW_JIRA_WEBHOOK_SECRET: optionalString.pipe(z.string().min(16, "must be at least 16 characters (the secret given to the Jira admin webhook)").optional()),
  AUTOFLOW_PACING: z.enum(["on", "off"], { error: 'must be "on" or "off"' }).default("on"),
  AUTOFLOW_SANDBOX_RATE_LIMIT: optionalString.pipe(
    z
      .string()
      .regex(/^[1-9]\d{0,6}\/[1-9]\d{0,6}(ms|s|m)$/, 'must be <requests>/<window>, e.g. "50/1s", "100/10s" or "600/1m"')
      .optional(),
  ),
  AUTOFLOW_REFRESH_AHEAD_MINUTES: z.coerce.number().int().min(1).max(59).default(DEFAULT_JOB_SETTINGS.refreshAheadEveryMinutes),
  AUTOFLOW_REFRESH_AHEAD_WINDOW_MINUTES: z.coerce.number().int().min(1).max(1440).default(DEFAULT_JOB_SETTINGS.refreshAheadWindowMinutes),
  AUTOFLOW_IDLE_REFRESH_HOURS: z.coerce.number().min(0).max(720).default(DEFAULT_JOB_SETTINGS.idleRefreshHours),
  AUTOFLOW_HEALTH_MAX_AGE_SECONDS: z.coerce.number().int().min(0).max(MAX_HEALTH_AGE_SECONDS).default(DEFAULT_HEALTH_MAX_AGE_SECONDS),
  AUTOFLOW_HEALTH_SWEEP_MINUTES: z.coerce.number().int().min(1).max(59).default(DEFAULT_JOB_SETTINGS.healthSweepEveryMinutes),
  AUTOFLOW_JOB_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(DEFAULT_JOB_SETTINGS.concurrency),
  AUTOFLOW_DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(10),
  AUTOFLOW_DATABASE_SCHEMA: optionalString.pipe(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case identifier").optional()),
});

const providerSchema = z.object({
  CLIENT_ID: optionalString,
  CLIENT_SECRET: optionalString,
  AUTHORIZE_URL: optionalString.pipe(httpUrl.optional()),
  TOKEN_URL: optionalString.pipe(httpUrl.optional()),
  REVOKE_URL: optionalString.pipe(httpUrl.optional()),
  API_URL: optionalString.pipe(httpUrl.optional()),
  SCOPES: optionalString,
});

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const problems: string[] = [];
  const base = baseSchema.safeParse(env);
  if (!base.success) for (const issue of base.error.issues) problems.push(`${issue.path.join(".")}: ${issue.message}`);
  const providers = {} as Record<ProviderId, ProviderConfig>;
  for (const id of PROVIDER_IDS) {
    const prefix = `AUTOFLOW_${id.toUpperCase()}_`;
    const slice: Record<string, string | undefined> = {};
    for (const key of Object.keys(providerSchema.shape)) slice[key] = env[prefix + key];
    const parsed = providerSchema.safeParse(slice);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(`${prefix}${issue.path.join(".")}: ${issue.message}`);
      continue;
    }
    const p = parsed.data;
    if (p.CLIENT_ID && !p.CLIENT_SECRET) problems.push(`${prefix}CLIENT_SECRET: required when ${prefix}CLIENT_ID is set`);
    const options: Record<string, string> = {};
    for (const [name, option] of Object.entries(CONNECTORS[id].definition.options ?? {})) {
      const value = env[prefix + name]?.trim();
      if (value === undefined || value === "") continue;
      if (!option.pattern.test(value)) problems.push(`${prefix}${name}: ${JSON.stringify(value.slice(0, 80))} is not valid: ${option.description}`);
      else options[name] = value;
    }
    providers[id] = {
      ...(Object.keys(options).length > 0 ? { options } : {}),
      ...(p.CLIENT_ID ? { clientId: p.CLIENT_ID } : {}),
      ...(p.CLIENT_SECRET ? { clientSecret: p.CLIENT_SECRET } : {}),
      ...(p.AUTHORIZE_URL ? { authorizeUrl: p.AUTHORIZE_URL } : {}),
      ...(p.TOKEN_URL ? { tokenUrl: p.TOKEN_URL } : {}),
      ...(p.REVOKE_URL ? { revokeUrl: p.REVOKE_URL } : {}),
      ...(p.API_URL ? { apiUrl: p.API_URL } : {}),
      ...(p.SCOPES ? { scopes: p.SCOPES.split(/[\s,]+/).filter(Boolean) } : {}),
    };
  }
  const allowlist: string[] = [];
  for (const entry of (base.success ? (base.data.AUTOFLOW_BASE_URL_ALLOWLIST ?? "") : "").split(/[\s,]+/).filter(Boolean)) {
    const origin = originOf(entry);
    if (origin === undefined) problems.push(`AUTOFLOW_BASE_URL_ALLOWLIST: ${JSON.stringify(entry.slice(0, 80))} is not an origin like https://sentry.internal:9000`);
    else allowlist.push(origin);
  }
  const returnUrls: string[] = [];
  for (const entry of (base.success ? (base.data.AUTOFLOW_OAUTH_RETURN_URLS ?? "") : "").split(/[\s,]+/).filter(Boolean)) {
    try {
      const url = new URL(entry);
      if (!["http:", "https:"].includes(url.protocol) || url.username || url.password || url.search || url.hash) throw new Error("not a plain URL");
      returnUrls.push(url.toString());
    } catch {
      problems.push(`AUTOFLOW_OAUTH_RETURN_URLS: ${JSON.stringify(entry.slice(0, 80))} is not an http(s) URL prefix like https://app.autoflow.example/settings/integrations`);
    }
  }
  if (base.success && base.data.DATABASE_URL && !base.data.AUTOFLOW_ENCRYPTION_KEY) problems.push(ENCRYPTION_KEY_REQUIRED);
  if (problems.length > 0 || !base.success) {
    throw new ConfigError(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
  const b = base.data;
  return {
    port: b.PORT,
    host: b.HOST,
    dataDir: resolve(b.AUTOFLOW_DATA_DIR),
    publicUrl: (b.AUTOFLOW_PUBLIC_URL ?? `http://localhost:${b.PORT}`).replace(/\/+$/, ""),
    ...(b.AUTOFLOW_JWT_SECRET ? { jwtSecret: b.AUTOFLOW_JWT_SECRET } : {}),
    ...(b.AUTOFLOW_ENCRYPTION_KEY ? { encryptionKey: b.AUTOFLOW_ENCRYPTION_KEY } : {}),
    encryptionKeysOld: (b.AUTOFLOW_ENCRYPTION_KEYS_OLD ?? "").split(/[\s,]+/).filter(Boolean),
    ...(b.AUTOFLOW_JWKS_URL ? { jwksUrl: b.AUTOFLOW_JWKS_URL } : {}),
    ...(b.AUTOFLOW_JWT_ISSUER ? { jwtIssuer: b.AUTOFLOW_JWT_ISSUER } : {}),
    ...(b.AUTOFLOW_JWT_AUDIENCE ? { jwtAudience: b.AUTOFLOW_JWT_AUDIENCE } : {}),
    logLevel: b.AUTOFLOW_LOG_LEVEL,
    providerTimeoutMs: b.AUTOFLOW_PROVIDER_TIMEOUT_MS,
    sandboxBasePort: b.AUTOFLOW_SANDBOX_BASE_PORT,
    ...(b.DATABASE_URL ? { databaseUrl: b.DATABASE_URL } : {}),
    ...(b.AUTOFLOW_DATABASE_SCHEMA ? { databaseSchema: b.AUTOFLOW_DATABASE_SCHEMA } : {}),
    databasePoolSize: b.AUTOFLOW_DATABASE_POOL_SIZE,
    baseUrlAllowlist: allowlist,
    oauthReturnUrls: returnUrls,
    limits: { bodyLimit: b.AUTOFLOW_BODY_LIMIT_BYTES, maxHeaderBytes: b.AUTOFLOW_MAX_HEADER_BYTES, requestsPerMinute: b.AUTOFLOW_RATE_LIMIT_PER_MINUTE },
    proxyLimits: { maxRequestBytes: b.AUTOFLOW_PROXY_MAX_REQUEST_BYTES, maxResponseBytes: b.AUTOFLOW_PROXY_MAX_RESPONSE_BYTES },
    ...(b.AUTOFLOW_JIRA_WEBHOOK_SECRET ? { jiraWebhookSecret: b.AUTOFLOW_JIRA_WEBHOOK_SECRET } : {}),
    ...(b.AUTOFLOW_METRICS_TOKEN ? { metricsToken: b.AUTOFLOW_METRICS_TOKEN } : {}),
    ...(b.AUTOFLOW_OPERATOR_TOKEN ? { operatorToken: b.AUTOFLOW_OPERATOR_TOKEN } : {}),
    jobs: b.AUTOFLOW_JOBS === "on",
    pacing: b.AUTOFLOW_PACING === "on",
    healthMaxAgeSeconds: b.AUTOFLOW_HEALTH_MAX_AGE_SECONDS,
    ...(b.AUTOFLOW_SANDBOX_RATE_LIMIT ? { sandboxRateLimit: parseRate(b.AUTOFLOW_SANDBOX_RATE_LIMIT) } : {}),
    jobSettings: {
      refreshAheadEveryMinutes: b.AUTOFLOW_REFRESH_AHEAD_MINUTES,
      refreshAheadWindowMinutes: b.AUTOFLOW_REFRESH_AHEAD_WINDOW_MINUTES,
      idleRefreshHours: b.AUTOFLOW_IDLE_REFRESH_HOURS,
      healthSweepEveryMinutes: b.AUTOFLOW_HEALTH_SWEEP_MINUTES,
      concurrency: b.AUTOFLOW_JOB_CONCURRENCY,
    },
    providers,
  };
}

/** The origin of an http(s) URL that is nothing but an origin (no path, query or credentials). */
function originOf(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (!["http:", "https:"].includes(url.protocol) || url.username || url.password || url.search || url.hash) return undefined;
    if (url.pathname !== "/" && url.pathname !== "") return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** A connector talks to its configured endpoints when it has a client id, and to its sandbox otherwise. */
export function isLive(config: ProviderConfig): boolean {
  return config.clientId !== undefined;
}

export function redirectUriFor(publicUrl: string, provider: string): string {
  return `${publicUrl}/api/integrations/${provider}/oauth/callback`;
}

/** The settings a connector runs with: its live endpoints (overridable), or its sandbox's. */
export function resolveSettings(input: {
  provider: ProviderId;
  config: ProviderConfig;
  publicUrl: string;
  sandbox?: StartedSandbox;
}): ConnectorSettings {
  const definition = CONNECTORS[input.provider].definition;
  const redirectUri = redirectUriFor(input.publicUrl, input.provider);
  const scopes = input.config.scopes ?? definition.defaultScopes;
  const options = optionValues(definition.options, input.config.options);
  if (isLive(input.config)) {
    const live = typeof definition.liveEndpoints === "function" ? definition.liveEndpoints(options) : definition.liveEndpoints;
    const endpoints: ConnectorEndpoints = {
      authorizeUrl: input.config.authorizeUrl ?? live.authorizeUrl,
      tokenUrl: input.config.tokenUrl ?? live.tokenUrl,
      apiUrl: (input.config.apiUrl ?? live.apiUrl).replace(/\/+$/, ""),
      ...((input.config.revokeUrl ?? live.revokeUrl) ? { revokeUrl: input.config.revokeUrl ?? live.revokeUrl } : {}),
    };
    return { mode: "live", options, clientId: input.config.clientId as string, clientSecret: input.config.clientSecret ?? "", endpoints, redirectUri, scopes };
  }
  if (!input.sandbox) throw new Error(`${input.provider} has no client id and no sandbox`);
  return {
    mode: "sandbox",
    options,
    clientId: input.sandbox.clientId,
    clientSecret: input.sandbox.clientSecret,
    endpoints: input.sandbox.endpoints,
    redirectUri,
    scopes,
    sandboxUrl: input.sandbox.url,
  };
}

function optionValues(declared: ConnectorDefinition["options"], set: Record<string, string> | undefined): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, option] of Object.entries(declared ?? {})) values[name] = set?.[name] ?? option.default;
  return values;
}

/** `50/1s` as 50 requests per 1000 ms (the pattern is checked by the schema). */
function parseRate(value: string): { requests: number; windowMs: number } {
  const [, requests, length, unit] = /^(\d+)\/(\d+)(ms|s|m)$/.exec(value) as unknown as [string, string, string, "ms" | "s" | "m"];
  return { requests: Number(requests), windowMs: Number(length) * { ms: 1, s: 1000, m: 60_000 }[unit] };
}
