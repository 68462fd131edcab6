/**
 * What every sandbox provider shares: its own HTTP server on loopback, the
 * request log, fault injection and the credentials desk, all under
 * `/_sandbox/`. A connector's `sandbox.ts` adds only the provider's real
 * paths, bodies and errors.
 *
 *   POST   /_sandbox/faults       {"fault": ..., "times"?, "retryAfterSeconds"?, "delayMs"?, "path"?}
 *                                  fault: rate-limit | server-error | revoke-all | delay | disconnect | malformed | bad-request
 *   DELETE /_sandbox/faults       clear every pending fault
 *   GET    /_sandbox/requests     [{method, path, time, status}], oldest first
 *   DELETE /_sandbox/requests     clear the log (it keeps the newest `requestLogLimit`, 1000 by default)
 *   GET    /_sandbox/info         {provider, clientId, app, pid}: which store's sandbox answers on this port
 *   POST   /_sandbox/credentials  a key or token the sandbox accepts, as the provider's dashboard hands one out
 *                                  (`?form=connect`: only the fields POST .../connections takes)
 */
import { createHash, randomBytes } from "node:crypto";
import * as devalue from "devalue";
import formbody from "@fastify/formbody";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import type { ConnectorEndpoints } from "./connector.js";
import { codeChallengeS256 } from "./oauth.js";

/**
 * The faults a sandbox can be told to produce. `bad-request` (a permanent
 * refusal such as Slack's invalid_arguments or Stripe's 400) is an addition
 * to the six of the spec, so that every one of the five error types can be
 * produced at the provider.
 */
export const FAULT_KINDS = ["rate-limit", "server-error", "revoke-all", "delay", "disconnect", "malformed", "bad-request"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const faultSchema = z.strictObject({
  fault: z.enum(FAULT_KINDS),
  /** How many requests it affects; every request until cleared when left out. */
  times: z.int().positive().max(1_000_000).optional(),
  retryAfterSeconds: z.number().nonnegative().max(86_400).optional(),
  delayMs: z.int().nonnegative().max(600_000).optional(),
  /** Only requests to this path (exact, without query); every provider path but the consent page when left out. */
  path: z.string().startsWith("/").max(512).optional(),
});
export type Fault = z.infer<typeof faultSchema>;

export type SandboxRequestRecord = { method: string; path: string; time: string; status?: number };

/** The provider-specific answers to faults that produce a response. */
export type FaultResponders = {
  rateLimit(reply: FastifyReply, fault: Fault): FastifyReply;
  serverError(reply: FastifyReply, fault: Fault): FastifyReply;
  /** The provider's answer to a request it refuses for good (a permanent 4xx). */
  badRequest(reply: FastifyReply, fault: Fault): FastifyReply;
  /** Defaults to a 200 whose JSON body is cut short. */
  malformed?(reply: FastifyReply, fault: Fault): FastifyReply;
};

export type SandboxOptions = {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Loopback only: sandboxes never listen beyond this machine. */
  host?: "127.0.0.1" | "::1" | "localhost";
  /** Redirect URIs registered for the sandbox's OAuth app. */
  redirectUris?: string[];
  /** Lifetime of expiring access tokens, where the provider issues them. */
  accessTokenTtlSeconds?: number;
  /** Fixed client id and secret (several service instances sharing one sandbox); random when left out. */
  clientId?: string;
  clientSecret?: string;
  /**
   * Where the sandbox keeps its app registration and what it issued, so that
   * a restart, another instance on the same database, or a CLI command beside
   * the service all meet the same sandbox. In memory only when left out.
   */
  persistence?: SandboxStateStore;
  /**
   * When another process on the same store already serves this sandbox: take
   * over its port once that process goes (default true). A one-shot CLI
   * command says false.
   */
  standby?: boolean;
  /** How many requests `GET /_sandbox/requests` keeps, newest last (default 1000). */
  requestLogLimit?: number;
};

/** A sandbox's OAuth app as the provider's dashboard registered it. */
export type SandboxApp = { clientId: string; clientSecret: string };

/** What a store holds of one provider's sandbox besides its state. */
export type SandboxRegistration = SandboxApp & {
  redirectUris: string[];
  /** Where the process serving it last listened. */
  url?: string;
};

/**
 * The sandboxes' storage, implemented beside the vault (the service's own
 * database: SQLite in the data folder, or PostgreSQL shared by instances).
 * The state is one opaque snapshot per provider, written by the one process
 * that serves that sandbox.
 */
export interface SandboxStateStore {
  /** The provider's registration; made from `proposed` when there is none yet, first writer winning. `redirectUris` are added to it. */
  register(provider: string, proposed: SandboxApp, redirectUris: readonly string[]): Promise<SandboxRegistration>;
  registration(provider: string): Promise<SandboxRegistration | undefined>;
  loadState(provider: string): Promise<string | undefined>;
  saveState(provider: string, state: string): Promise<void>;
  setUrl(provider: string, url: string): Promise<void>;
}

export type StartedSandbox = {
  provider: string;
  url: string;
  endpoints: ConnectorEndpoints;
  clientId: string;
  clientSecret: string;
  /** `serving`: this process answers at `url`; `remote`: another process on the same store does (this one stands by). */
  role(): "serving" | "remote";
  close(): Promise<void>;
};

export type SandboxDefinition = {
  provider: string;
  /** Paths that a browser visits (the consent page): faults do not apply to them. */
  browserPaths: readonly string[];
  faults: FaultResponders;
  /** Registers the provider's real routes. */
  routes(app: FastifyInstance): void;
  /** The `revoke-all` fault: every token issued so far stops working. */
  revokeAll(): void;
  /** Hands out a credential, as the provider's dashboard would. */
  issueCredential(body: unknown): Record<string, unknown>;
  endpoints(origin: string): ConnectorEndpoints;
  /**
   * Everything the sandbox issued and was written (Maps, Sets, arrays, plain
   * records, shared references kept): snapshotted after each request and
   * handed back to the next build as `restored`. Rate-limit windows and the
   * like stay out of it.
   */
  state?: object;
  /** Told the origin once the sandbox listens (issuer identifiers, self links). */
  listening?(origin: string): void;
};

/** Builds a sandbox's definition for its app, from a restored state when there is one. */
export type SandboxBuild = (app: SandboxApp, restored: unknown, redirectUris: string[]) => SandboxDefinition;

/** The restored state, or a fresh one (fields a newer version added are taken from the fresh one). */
export function restoreState<T extends object>(restored: unknown, fresh: () => T): T {
  if (restored === undefined || restored === null || typeof restored !== "object") return fresh();
  return { ...fresh(), ...(restored as Partial<T>) };
}

/** The fields of a desk credential that POST /api/integrations/:provider/connections takes. */
const CONNECT_FIELDS = ["apiKey", "accessToken", "baseUrl", "email"];

/** How often a standing-by process tries to take over a sandbox whose server went away. */
const STANDBY_INTERVAL_MS = 1_000;
/** How long a probe of a port waits for a sandbox to say who it is. */
const PROBE_TIMEOUT_MS = 1_500;
const DEFAULT_REQUEST_LOG_LIMIT = 1_000;

/**
 * Starts the sandbox for `provider`. Without persistence it simply listens.
 * With a store, one process serves each sandbox at a time: this one, when
 * the port is free, with the state the store holds; or the process already
 * serving it from the same store, which this one then uses and stands by to
 * replace. A port held by anything else is an error that names it.
 */
export async function startSandbox(provider: string, options: SandboxOptions, proposed: SandboxApp, build: SandboxBuild): Promise<StartedSandbox> {
  const host = options.host ?? "127.0.0.1";
  const store = options.persistence;
  if (!store) {
    const served = await serve(build(proposed, undefined, [...(options.redirectUris ?? [])]), options, proposed, undefined);
    if (!served) throw new Error(`the ${provider} sandbox could not listen on ${host}:${options.port ?? 0}: the port is in use`);
    return startedFrom(provider, served, proposed, () => "serving", served.close);
  }

  const registration = await store.register(provider, proposed, options.redirectUris ?? []);
  const app = { clientId: registration.clientId, clientSecret: registration.clientSecret };
  const redirectUris = [...registration.redirectUris];
  const refreshRedirectUris = async (): Promise<void> => {
    const current = await store.registration(provider);
    for (const uri of current?.redirectUris ?? []) if (!redirectUris.includes(uri)) redirectUris.push(uri);
  };
  const serveFromStore = async (port: number): Promise<Served | undefined> => {
    const text = await store.loadState(provider);
    let restored: unknown;
    try {
      restored = text === undefined ? undefined : devalue.parse(text);
    } catch (error) {
      throw new Error(`the ${provider} sandbox's saved state cannot be read (${error instanceof Error ? error.message : String(error)}); nothing was changed`, { cause: error });
    }
    const served = await serve(build(app, restored, redirectUris), { ...options, port }, app, { store, provider, text, refreshRedirectUris });
    if (served) await store.setUrl(provider, served.url);
    return served;
  };

  const port = options.port ?? 0;
  let served: Served | undefined;
  let remoteUrl: string | undefined;
  if (port !== 0) {
    served = await serveFromStore(port);
    if (!served) {
      const url = originOf(host, port);
      if (!(await servesSameSandbox(url, provider, app))) {
        throw new Error(
          `port ${port} (for the ${provider} sandbox) is taken by a process that is not this database's ${provider} sandbox; ` +
            "stop it, or choose other sandbox ports with AUTOFLOW_SANDBOX_BASE_PORT",
        );
      }
      remoteUrl = url;
    }
  } else {
    // Free ports: whoever serves this store's sandbox said where; use it while it answers.
    if (registration.url && (await servesSameSandbox(registration.url, provider, app))) remoteUrl = registration.url;
    else served = await serveFromStore(0);
    if (!served && !remoteUrl) throw new Error(`the ${provider} sandbox could not listen on a free port`);
  }

  let closed = false;
  let standby: NodeJS.Timeout | undefined;
  if (!served && remoteUrl && options.standby !== false) {
    const remotePort = Number(new URL(remoteUrl).port);
    let trying = false;
    standby = setInterval(() => {
      if (trying || closed || served) return;
      trying = true;
      serveFromStore(remotePort)
        .then((taken) => {
          if (!taken) return;
          if (closed) return taken.close();
          served = taken;
          clearInterval(standby);
        })
        .catch(() => undefined)
        .finally(() => {
          trying = false;
        });
    }, STANDBY_INTERVAL_MS);
    standby.unref();
  }
  const url = served?.url ?? (remoteUrl as string);
  const definitionEndpoints = served?.endpoints ?? build(app, undefined, redirectUris).endpoints(url);
  return {
    provider,
    url,
    endpoints: definitionEndpoints,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    role: () => (served ? "serving" : "remote"),
    close: async () => {
      closed = true;
      if (standby) clearInterval(standby);
      await served?.close();
    },
  };
}

type Served = { url: string; endpoints: ConnectorEndpoints; close(): Promise<void> };

type Persisting = { store: SandboxStateStore; provider: string; text: string | undefined; refreshRedirectUris(): Promise<void> };

function startedFrom(provider: string, served: Served, app: SandboxApp, role: () => "serving" | "remote", close: () => Promise<void>): StartedSandbox {
  return { provider, url: served.url, endpoints: served.endpoints, clientId: app.clientId, clientSecret: app.clientSecret, role, close };
}

function originOf(host: string, port: number): string {
  return `http://${host === "::1" ? "[::1]" : host}:${port}`;
}

/** Whether `url` answers as this store's sandbox of `provider` (same app registration). */
async function servesSameSandbox(url: string, provider: string, app: SandboxApp): Promise<boolean> {
  try {
    const response = await fetch(`${url}/_sandbox/info`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    if (!response.ok) return false;
    const info = (await response.json()) as { provider?: unknown; clientId?: unknown; app?: unknown };
    return info.provider === provider && info.clientId === app.clientId && info.app === appFingerprint(app);
  } catch {
    return false;
  }
}

/** Names an app registration without giving away its secret. */
function appFingerprint(app: SandboxApp): string {
  return createHash("sha256").update(`${app.clientId}\n${app.clientSecret}`).digest("base64url").slice(0, 22);
}

/** Listens with `definition`; undefined when the port is taken. */
async function serve(definition: SandboxDefinition, options: SandboxOptions, credentials: SandboxApp, persisting: Persisting | undefined): Promise<Served | undefined> {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  await app.register(formbody);
  // An empty body sent as JSON (`DELETE /_sandbox/faults` from many clients) is no body, not a 400.
  const json = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") {
      done(null, undefined);
      return;
    }
    void json(request, text, done);
  });
  const faults: Fault[] = [];
  const log: SandboxRequestRecord[] = [];
  const logLimit = options.requestLogLimit ?? DEFAULT_REQUEST_LOG_LIMIT;
  let dropped = 0;
  const saver = persisting && definition.state ? stateSaver(definition.state, persisting) : undefined;
  let lastRegistrationRefresh = 0;

  app.addHook("onRequest", async (request, reply) => {
    const path = pathOf(request);
    if (path.startsWith("/_sandbox/")) return;
    const record: SandboxRequestRecord = { method: request.method, path, time: new Date().toISOString() };
    log.push(record);
    if (log.length > logLimit) {
      dropped += log.length - logLimit;
      log.splice(0, log.length - logLimit);
    }
    reply.raw.once("finish", () => {
      record.status = reply.raw.statusCode;
    });
    // Another instance may have registered its redirect URI since: read them again at the consent page, and now and then.
    if (persisting && (definition.browserPaths.includes(path) || Date.now() - lastRegistrationRefresh > STANDBY_INTERVAL_MS)) {
      lastRegistrationRefresh = Date.now();
      await persisting.refreshRedirectUris().catch(() => undefined);
    }
    if (definition.browserPaths.includes(path)) return;
    const fault = takeFault(faults, path);
    if (!fault) return;
    switch (fault.fault) {
      case "delay":
        await new Promise((resolve) => setTimeout(resolve, fault.delayMs ?? 1_000));
        return;
      case "disconnect":
        // Drop the connection without a byte of response: the client sees a reset.
        reply.hijack();
        request.raw.socket.destroy();
        return reply;
      case "rate-limit":
        return definition.faults.rateLimit(reply, fault);
      case "server-error":
        return definition.faults.serverError(reply, fault);
      case "bad-request":
        return definition.faults.badRequest(reply, fault);
      case "malformed":
        return definition.faults.malformed
          ? definition.faults.malformed(reply, fault)
          : reply.code(200).header("content-type", "application/json; charset=utf-8").send('{"ok": true, "trunc');
      case "revoke-all":
        return; // acted on when set, never queued
    }
  });
  if (saver) {
    // What a request changed is stored before its answer leaves: an acknowledged grant survives a crash.
    app.addHook("onSend", async (request, _reply, payload) => {
      if (request.method !== "GET" || !pathOf(request).startsWith("/_sandbox/")) await saver.flush();
      return payload;
    });
  }

  app.get("/_sandbox/info", async () => ({ provider: definition.provider, clientId: credentials.clientId, app: appFingerprint(credentials), pid: process.pid }));
  app.post("/_sandbox/faults", async (request, reply) => {
    const parsed = faultSchema.safeParse(request.body);
    if (!parsed.success) {
      return reply.code(400).send({ error: `invalid fault: ${z.prettifyError(parsed.error)}`, allowed: FAULT_KINDS });
    }
    if (parsed.data.fault === "revoke-all") {
      definition.revokeAll();
      return reply.code(200).send({ ok: true, fault: "revoke-all", applied: true });
    }
    faults.push({ ...parsed.data });
    return reply.code(201).send({ ok: true, pending: faults });
  });
  app.delete("/_sandbox/faults", async () => {
    faults.length = 0;
    return { ok: true, pending: [] };
  });
  app.get("/_sandbox/requests", async () => ({ requests: log, limit: logLimit, dropped }));
  app.delete("/_sandbox/requests", async () => {
    log.length = 0;
    dropped = 0;
    return { ok: true };
  });
  app.post("/_sandbox/credentials", async (request, reply) => {
    try {
      const credential = definition.issueCredential(request.body ?? {});
      // `?form=connect`: only what POST .../connections takes, so the answer can be posted there as it is.
      const form = (request.query as Record<string, unknown>).form;
      if (form === "connect") return reply.code(201).send(Object.fromEntries(Object.entries(credential).filter(([k]) => CONNECT_FIELDS.includes(k))));
      if (form !== undefined) return reply.code(400).send({ error: "form must be connect, or left out for the whole credential" });
      return reply.code(201).send(credential);
    } catch (error) {
      return reply.code(400).send({ error: error instanceof Error ? error.message : String(error) });
    }
  });

  definition.routes(app);
  const host = options.host ?? "127.0.0.1";
  try {
    await app.listen({ host, port: options.port ?? 0 });
  } catch (error) {
    await app.close();
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") return undefined;
    throw error;
  }
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("sandbox did not bind a TCP port");
  const url = originOf(host, address.port);
  definition.listening?.(url);
  return {
    url,
    endpoints: definition.endpoints(url),
    close: async () => {
      await app.close();
      await saver?.flush();
    },
  };
}

/**
 * Writes the state's snapshot to the store, one write at a time: a flush
 * asked for while one is under way is served by the next, which snapshots
 * after it. A snapshot equal to the last one stored is not written again.
 */
function stateSaver(state: object, persisting: Persisting): { flush(): Promise<void> } {
  let last = persisting.text;
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const save = async (): Promise<void> => {
    const text = devalue.stringify(state);
    if (text === last) return;
    await persisting.store.saveState(persisting.provider, text);
    last = text;
  };
  const run = (): Promise<void> => {
    running = save().finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    flush() {
      if (!running) return run();
      next ??= running.catch(() => undefined).then(() => {
        next = undefined;
        return run();
      });
      return next;
    },
  };
}

function takeFault(faults: Fault[], path: string): Fault | undefined {
  const index = faults.findIndex((f) => f.path === undefined || f.path === path);
  if (index < 0) return undefined;
  const fault = faults[index] as Fault;
  if (fault.times !== undefined) {
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
  }
  return fault;
}

function pathOf(request: FastifyRequest): string {
  const q = request.url.indexOf("?");
  return q < 0 ? request.url : request.url.slice(0, q);
}

/** Random characters from `alphabet` (rejection-free for alphabets up to 256). */
export function randomChars(length: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

/** Client credentials from HTTP Basic (RFC 6749 §2.3.1), if the request carries them. */
export function basicCredentials(request: FastifyRequest): { id: string; secret: string } | undefined {
  const header = request.headers.authorization;
  if (!header?.toLowerCase().startsWith("basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
}

/** The bearer token of a request, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header?.toLowerCase().startsWith("bearer ")) return undefined;
  return header.slice(7).trim() || undefined;
}

/** A form or JSON body as a flat string record (what providers read). */
export function bodyParams(request: FastifyRequest): Record<string, string> {
  const body = request.body;
  const out: Record<string, string> = {};
  if (body && typeof body === "object") {
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      if (typeof value === "string") out[key] = value;
      else if (typeof value === "number" || typeof value === "boolean") out[key] = String(value);
    }
  }
  return out;
}

export function queryParams(request: FastifyRequest): Record<string, string> {
  const query = request.query as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(query ?? {})) if (typeof value === "string") out[key] = value;
  return out;
}

export { codeChallengeS256 as challengeOf } from "./oauth.js";

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/**
 * The authorization server's PKCE check (RFC 7636 §4.6): `verifier` is well
 * formed and transforms to `challenge` by `method`. Each sandbox answers a
 * mismatch with its own provider's error.
 */
export function verifierMatches(verifier: string | undefined, challenge: string, method: string = "S256"): boolean {
  if (verifier === undefined || !PKCE_VERIFIER.test(verifier)) return false;
  return (method === "S256" ? codeChallengeS256(verifier) : verifier) === challenge;
}
