/**
 * What every sandbox provider shares: its own HTTP server on loopback, the
 * request log, fault injection, enforced rates, the credentials desk (all
 * under `/_sandbox/`) and the state persisted in the service's store; beside
 * it, `authorizationServer.ts`, the one authorization server they all run
 * (codes, PKCE, expiry, rotation, revocation). A connector's `sandbox.ts`
 * declares only its provider: real paths, token shapes, error bodies, headers.
 *
 *   POST   /_sandbox/faults       {"fault": ..., "times"?, "retryAfterSeconds"?, "delayMs"?, "path"?, "skip"?}
 *                                  fault: rate-limit | server-error | revoke-all | delay | disconnect | malformed | bad-request
 *   DELETE /_sandbox/faults       clear every pending fault
 *   GET    /_sandbox/requests     [{method, path, time, status}], oldest first
 *   DELETE /_sandbox/requests     clear the log (it keeps the newest `requestLogLimit`, 1000 by default)
 *   GET    /_sandbox/info         {provider, clientId, pid, proof?}: which store's sandbox answers on this port
 *                                  (`?challenge=`: proof is an HMAC of it under the app's secret)
 *   PUT    /_sandbox/rate-limit   {"requests": 50, "windowMs": 1000}: enforce a rate (see below)
 *   DELETE /_sandbox/rate-limit   no enforced rate (the default)
 *   GET    /_sandbox/rate-limit   {rateLimit: {requests, windowMs} | null, served, limited}, counted since it was set
 *   PUT    /_sandbox/latency      {"latencyMs": 20}: every answer leaves at least this late (see below)
 *   DELETE /_sandbox/latency      no added latency (the default)
 *   GET    /_sandbox/latency      {latencyMs}
 *
 * The control plane refuses cross-origin requests and non-JSON bodies: a web
 * page must not be able to inject faults or revoke tokens (CSRF).
 *   POST   /_sandbox/credentials  a key or token the sandbox accepts, as the provider's dashboard hands one out
 *                                  (`?form=connect`: only the fields POST .../connections takes)
 *
 * An enforced rate counts every request but the control plane's and the
 * consent page's in fixed windows aligned on the epoch clock. Within the
 * budget an answer carries the provider's window headers; past it, the
 * provider's own rate-limit answer. Real providers keep a budget per app and
 * account (or user, or endpoint); a sandbox keeps one for all its callers,
 * which is what a test of a connector's pacing needs and nothing more.
 *
 * Latency is the link's, not a fault: while it is set, every request but the
 * control plane's and the consent page's waits `latencyMs` before anything
 * else (the enforced rate, a fault, the route), so it holds for every answer
 * and adds to a `delay` fault rather than taking its place in the queue.
 * Like the enforced rate, it is never persisted.
 */
import { createHmac, randomBytes } from "node:crypto";
import * as devalue from "devalue";
import formbody from "@fastify/formbody";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Agent, fetch as undiciFetch } from "undici";
import { z } from "zod";
import { connectFieldsOf, type ConnectorEndpoints } from "../integrations/shared/connector.js";

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
  /** Let this many matching requests through first (a failure on a run's second page, say). */
  skip: z.int().positive().max(1_000_000).optional(),
});
export type Fault = z.infer<typeof faultSchema>;

export type SandboxRequestRecord = { method: string; path: string; time: string; status?: number };

/** An enforced rate: at most `requests` in each window of `windowMs`, windows aligned on multiples of it. */
export type SandboxRateLimit = { requests: number; windowMs: number };

const rateLimitSchema = z.strictObject({
  requests: z.int().positive().max(1_000_000),
  /** A day at most: the longest window any of the eight providers keeps (HubSpot's daily limit). */
  windowMs: z.int().positive().max(86_400_000),
});

const latencySchema = z.strictObject({
  /** Ten minutes at most, like a delay fault's. */
  latencyMs: z.int().nonnegative().max(600_000),
});

/** The enforced rate's window as one answer sees it, for the provider's window headers. */
export type RateWindow = {
  limit: number;
  /** What is left of the window after this request (0 on the answers over the limit). */
  remaining: number;
  /** When the window ends, epoch milliseconds. */
  resetAtMs: number;
  windowMs: number;
};

/** The provider-specific answers to faults that produce a response. */
export type FaultResponders = {
  /**
   * The provider's throttled answer. `enforced` is given when an enforced
   * rate (not an injected fault) ran out: a provider that sends no
   * Retry-After on its real throttle then sends none, whatever
   * `fault.retryAfterSeconds` says.
   */
  rateLimit(reply: FastifyReply, fault: Fault, enforced?: RateWindow): FastifyReply;
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
  /** Where a sandbox with a store says what happened to it (took over, lost its claim, a port held by a stranger). */
  log?: (level: "info" | "warn" | "error", message: string) => void;
  /** An enforced rate from the start (`PUT /_sandbox/rate-limit` changes it); none, so unlimited, when left out. Never persisted. */
  rateLimit?: SandboxRateLimit;
  /**
   * Listen over https with this key and certificate (PEM) instead of http: some official clients
   * send a token only over https (Microsoft Graph's). The URL the sandbox reports then starts
   * https://, and the probe of a sandbox on the same store trusts `cert`. Plain http when left out.
   */
  tls?: SandboxTls;
};

/** A key and certificate to listen with over https (Fastify's `https` option). */
export type SandboxTls = { key: string | Buffer; cert: string | Buffer };

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
  /** Makes `owner` the one process whose writes are taken, serving at `url`. */
  claim(provider: string, owner: string, url: string): Promise<void>;
  /** Stores the snapshot if `owner` still holds the claim; false when another process claimed the sandbox since. */
  saveState(provider: string, owner: string, state: string): Promise<boolean>;
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
  /**
   * Sets the provider's window headers for an enforced rate, under the limit
   * and over it. Called as the answer leaves, after the route: what it sets
   * replaces what the route set under the same names. Left out by providers
   * that send no window headers.
   */
  rateLimitHeaders?(reply: FastifyReply, window: RateWindow): void;
  /**
   * Requests other than GET that change nothing (a search sent as POST): their answers leave without a
   * snapshot of the state. A GET changes nothing unless it is a browser path (the consent page issues codes).
   */
  readOnly?(method: string, path: string): boolean;
};

/** Builds a sandbox's definition for its app, from a restored state when there is one. */
export type SandboxBuild = (app: SandboxApp, restored: unknown, redirectUris: string[]) => SandboxDefinition;

/** The restored state, or a fresh one (fields a newer version added are taken from the fresh one). */
export function restoreState<T extends object>(restored: unknown, fresh: () => T): T {
  if (restored === undefined || restored === null || typeof restored !== "object") return fresh();
  return { ...fresh(), ...(restored as Partial<T>) };
}

/** How often a standing-by process checks on the server it uses, and tries to take the port when that server is gone. */
const STANDBY_INTERVAL_MS = 1_000;
/** How long a probe of a port waits for a sandbox to say who it is. */
const PROBE_TIMEOUT_MS = 1_500;
const DEFAULT_REQUEST_LOG_LIMIT = 1_000;
/** How long a closing sandbox waits for requests in flight (a delay fault's, say) before it lets its port go regardless. */
const DRAIN_TIMEOUT_MS = 30_000;
/** How often a new server reads the state again when the last server's final write lands while it starts. */
const RELOAD_ATTEMPTS = 5;

/**
 * Starts the sandbox for `provider`. Without persistence it simply listens.
 * With a store, one process serves each sandbox at a time, with the state
 * the store holds: the process already serving it from the same store (at
 * the address the store names, or on the port asked for), which this one
 * then uses and stands by to replace; or this one, when nobody serves it. A
 * port held by anything else is an error that names it. A server proves it
 * is this store's by answering a fresh challenge with the app's secret.
 */
export async function startSandbox(provider: string, options: SandboxOptions, proposed: SandboxApp, build: SandboxBuild): Promise<StartedSandbox> {
  if (options.rateLimit !== undefined) {
    const parsed = rateLimitSchema.safeParse(options.rateLimit);
    if (!parsed.success) throw new Error(`the ${provider} sandbox's rateLimit option is invalid (requests and windowMs are positive integers): ${z.prettifyError(parsed.error)}`);
  }
  const host = options.host ?? "127.0.0.1";
  const store = options.persistence;
  const log = options.log ?? (() => undefined);
  if (!store) {
    const served = await serve(build(proposed, undefined, [...(options.redirectUris ?? [])]), options, proposed, undefined);
    if (!served) throw new Error(`the ${provider} sandbox could not listen on ${host}:${options.port ?? 0}: the port is in use`);
    return { provider, url: served.url, endpoints: served.endpoints, clientId: proposed.clientId, clientSecret: proposed.clientSecret, role: () => "serving", close: served.close };
  }

  const registration = await store.register(provider, proposed, options.redirectUris ?? []);
  const app = { clientId: registration.clientId, clientSecret: registration.clientSecret };
  const redirectUris = [...registration.redirectUris];
  /** Fences this process's writes: the store takes state only from the process that claimed the sandbox last. */
  const owner = randomBytes(12).toString("base64url");
  const refreshRedirectUris = async (): Promise<void> => {
    const current = await store.registration(provider);
    for (const uri of current?.redirectUris ?? []) if (!redirectUris.includes(uri)) redirectUris.push(uri);
  };
  const lose = (url: string): void => log("error", `the ${provider} sandbox at ${url} was claimed by another process on this database; this one stops serving it (restart this process to use the other)`);

  /** Serves on `port` with the state the store holds; undefined when the port is taken. */
  const serveFromStore = async (port: number): Promise<Served | undefined> => {
    for (let attempt = 0; ; attempt++) {
      const text = await store.loadState(provider);
      const candidate = await serve(build(app, parseState(provider, text), redirectUris), { ...options, port }, app, { store, provider, owner, text, refreshRedirectUris, lose });
      if (!candidate) return undefined;
      // The port was free, so the process that served it last had written its final state: read it again
      // now that this process holds the port, and start over if that write landed after the first read.
      if ((await store.loadState(provider)) === text || attempt >= RELOAD_ATTEMPTS) {
        await store.claim(provider, owner, candidate.url);
        candidate.open();
        return candidate;
      }
      await candidate.close();
    }
  };
  const notOurs = (port: number): Error =>
    new Error(
      `port ${port} (for the ${provider} sandbox) is taken by a process that is not this database's ${provider} sandbox; ` +
        "stop it, or choose other sandbox ports with AUTOFLOW_SANDBOX_BASE_PORT",
    );

  let served: Served | undefined;
  let remoteUrl: string | undefined;
  // Whoever serves this store's sandbox said where: use it while it answers as this store's,
  // whatever ports this process was given (a CLI command beside the service, a second instance).
  if (registration.url && (await probe(registration.url, provider, app, options.tls)) === "same") remoteUrl = registration.url;
  else {
    const port = options.port ?? 0;
    served = await serveFromStore(port);
    if (!served) {
      const url = originOf(host, port, options.tls);
      if ((await probe(url, provider, app, options.tls)) !== "same") throw notOurs(port);
      remoteUrl = url;
    }
  }

  let closed = false;
  let standby: NodeJS.Timeout | undefined;
  if (!served && remoteUrl && options.standby !== false) {
    const watched = remoteUrl;
    const port = Number(new URL(watched).port);
    let busy = false;
    let warned = false;
    standby = setInterval(() => {
      if (busy || closed || served) return;
      busy = true;
      (async () => {
        const who = await probe(watched, provider, app, options.tls);
        if (who === "same") {
          warned = false;
          return;
        }
        if (who === "other") {
          if (!warned) log("error", notOurs(port).message);
          warned = true;
          return;
        }
        const taken = await serveFromStore(port);
        if (!taken) return;
        if (closed) return taken.close();
        served = taken;
        clearInterval(standby);
        log("info", `took over the ${provider} sandbox at ${taken.url}: the process that served it is gone`);
      })()
        .catch((error: unknown) => log("warn", `could not take over the ${provider} sandbox: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => {
          busy = false;
        });
    }, STANDBY_INTERVAL_MS);
    standby.unref();
  }
  const url = served?.url ?? (remoteUrl as string);
  return {
    provider,
    url,
    endpoints: served?.endpoints ?? build(app, undefined, redirectUris).endpoints(url),
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    role: () => (served && !served.lost() ? "serving" : "remote"),
    close: async () => {
      closed = true;
      if (standby) clearInterval(standby);
      await served?.close();
    },
  };
}

type Served = {
  url: string;
  endpoints: ConnectorEndpoints;
  /** Starts answering (requests wait until then). */
  open(): void;
  /** Whether another process claimed the sandbox since. */
  lost(): boolean;
  close(): Promise<void>;
};

type Persisting = {
  store: SandboxStateStore;
  provider: string;
  owner: string;
  text: string | undefined;
  refreshRedirectUris(): Promise<void>;
  lose(url: string): void;
};

function parseState(provider: string, text: string | undefined): unknown {
  try {
    return text === undefined ? undefined : devalue.parse(text);
  } catch (error) {
    throw new Error(`the ${provider} sandbox's saved state cannot be read (${error instanceof Error ? error.message : String(error)}); nothing was changed`, { cause: error });
  }
}

function originOf(host: string, port: number, tls: SandboxTls | undefined): string {
  return `${tls ? "https" : "http"}://${host === "::1" ? "[::1]" : host}:${port}`;
}

/** The answer to a challenge that only a holder of the app's secret can give. */
function proofOf(app: SandboxApp, provider: string, challenge: string): string {
  return createHmac("sha256", app.clientSecret).update(`autoflow-sandbox-info\n${provider}\n${app.clientId}\n${challenge}`).digest("base64url");
}

/**
 * Who answers at `url`: this store's sandbox of `provider` (it answered a
 * fresh challenge with the app's secret), something else, or nothing.
 */
async function probe(url: string, provider: string, app: SandboxApp, tls: SandboxTls | undefined): Promise<"same" | "other" | "none"> {
  const challenge = randomBytes(16).toString("base64url");
  const target = `${url}/_sandbox/info?challenge=${challenge}`;
  const signal = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  let response: Pick<Response, "ok" | "json">;
  try {
    if (!url.startsWith("https:")) response = await fetch(target, { signal });
    else {
      // An https sandbox's certificate is its own (self-signed in tests): the probe trusts it and nothing else.
      const dispatcher = new Agent({ connect: { ca: tls?.cert } });
      try {
        const answer = await undiciFetch(target, { signal, dispatcher });
        const body: unknown = await answer.json().catch(() => undefined);
        response = { ok: answer.ok, json: async () => body };
      } finally {
        await dispatcher.close();
      }
    }
  } catch {
    return "none";
  }
  try {
    const info = (await response.json()) as { provider?: unknown; clientId?: unknown; proof?: unknown };
    return response.ok && info.provider === provider && info.clientId === app.clientId && info.proof === proofOf(app, provider, challenge) ? "same" : "other";
  } catch {
    return "other";
  }
}

/** A Fastify server, over https when `tls` is given. */
function newServer(tls: SandboxTls | undefined): FastifyInstance {
  const base = { logger: false, bodyLimit: 1024 * 1024 } as const;
  if (!tls) return Fastify(base);
  // Fastify types an https server apart from an http one; routes, hooks and replies are the same on both.
  return Fastify({ ...base, https: { key: tls.key, cert: tls.cert } }) as unknown as FastifyInstance;
}

/** Listens with `definition`; undefined when the port is taken. */
async function serve(definition: SandboxDefinition, options: SandboxOptions, credentials: SandboxApp, persisting: Persisting | undefined): Promise<Served | undefined> {
  const app = newServer(options.tls);
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
  const rate = enforcedRate(options.rateLimit);
  let latencyMs = 0;
  /** The requests waiting out the latency: closing lets them go at once, as it does not wait for a link. */
  const waiting = new Set<{ timer: NodeJS.Timeout | undefined; release: () => void }>();
  const waitLatency = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const wait = { timer: undefined as NodeJS.Timeout | undefined, release: (): void => undefined };
      wait.release = () => {
        clearTimeout(wait.timer);
        waiting.delete(wait);
        resolve();
      };
      wait.timer = setTimeout(wait.release, ms);
      waiting.add(wait);
    });
  /** The enforced window each counted request saw, for its answer's headers. */
  const windows = new WeakMap<FastifyRequest, RateWindow>();
  const log: SandboxRequestRecord[] = [];
  const logLimit = options.requestLogLimit ?? DEFAULT_REQUEST_LOG_LIMIT;
  let dropped = 0;
  const saver = persisting && definition.state ? stateSaver(definition.state, persisting) : undefined;
  let lastRegistrationRefresh = 0;
  let ownOrigin = "";
  let inFlight = 0;
  let closing = false;
  let lost = false;
  let opened: () => void = () => undefined;
  const ready = persisting ? new Promise<void>((resolve) => (opened = resolve)) : Promise.resolve();
  const loseIt = (): void => {
    if (lost) return;
    lost = true;
    persisting?.lose(ownOrigin);
  };
  const unavailable = (reply: FastifyReply, why: string): FastifyReply => reply.code(503).header("connection", "close").header("retry-after", "1").send({ error: why });

  // First of all: requests in flight are counted so that closing waits for them (and their state) before the port goes.
  app.addHook("onRequest", async (request, reply) => {
    if (lost) return unavailable(reply, "this sandbox is now served by another process; ask the service for its address");
    if (closing) return unavailable(reply, "this sandbox is restarting; try again in a moment");
    inFlight += 1;
    reply.raw.once("close", () => {
      inFlight -= 1;
    });
    await ready;
    if (!pathOf(request).startsWith("/_sandbox/")) return;
    // The control plane is for this machine's tools, not for web pages: a page's form post or
    // cross-origin call (CSRF) would otherwise inject faults or revoke tokens, and the effect is stored.
    const origin = request.headers.origin;
    if (origin !== undefined && origin !== ownOrigin) {
      return reply.code(403).send({ error: `the sandbox control plane takes no cross-origin requests (Origin: ${origin})` });
    }
    const type = request.headers["content-type"];
    if (request.method !== "GET" && type !== undefined && !type.toLowerCase().startsWith("application/json")) {
      return reply.code(415).send({ error: "the sandbox control plane takes JSON bodies (content-type: application/json)" });
    }
  });
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
    if (latencyMs > 0) await waitLatency(latencyMs);
    // The enforced rate comes before injected faults, as a provider's limiter runs before its handlers.
    const counted = rate.take(Date.now());
    if (counted) {
      windows.set(request, counted.window);
      if (counted.over) {
        const retryAfterSeconds = Math.max(1, Math.ceil((counted.window.resetAtMs - Date.now()) / 1000));
        return definition.faults.rateLimit(reply, { fault: "rate-limit", retryAfterSeconds }, counted.window);
      }
    }
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
  if (definition.rateLimitHeaders) {
    const setHeaders = definition.rateLimitHeaders;
    app.addHook("onSend", async (request, reply, payload) => {
      const window = windows.get(request);
      if (window) setHeaders(reply, window);
      return payload;
    });
  }
  /** What cannot have changed the state: a GET or HEAD off the consent page, or what the provider declares a read. */
  const readsOnly = (request: FastifyRequest): boolean => {
    const path = pathOf(request);
    if (request.method === "GET" || request.method === "HEAD") return !definition.browserPaths.includes(path);
    return definition.readOnly?.(request.method, path) ?? false;
  };
  if (saver) {
    // What a request changed is stored before its answer leaves: an acknowledged grant survives a crash.
    // Snapshotting the whole state costs in proportion to it, so reads are not snapshotted.
    // A write the store refuses (another process claimed the sandbox) turns the answer into a 503.
    app.addHook("onSend", async (request, reply, payload) => {
      if (lost || readsOnly(request)) return payload;
      if (await saver.flush()) return payload;
      loseIt();
      reply.code(503).header("connection", "close").header("content-type", "application/json; charset=utf-8");
      return JSON.stringify({ error: "this sandbox is now served by another process; what this request did is not kept" });
    });
  }

  app.get("/_sandbox/info", async (request) => {
    const challenge = (request.query as Record<string, unknown>).challenge;
    return {
      provider: definition.provider,
      clientId: credentials.clientId,
      pid: process.pid,
      ...(typeof challenge === "string" && challenge.length >= 16 && challenge.length <= 128 ? { proof: proofOf(credentials, definition.provider, challenge) } : {}),
    };
  });
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
  app.put("/_sandbox/rate-limit", async (request, reply) => {
    const parsed = rateLimitSchema.safeParse(request.body);
    if (!parsed.success) {
      return reply.code(400).send({ error: `invalid rate limit (requests and windowMs are positive integers): ${z.prettifyError(parsed.error)}` });
    }
    rate.set(parsed.data);
    return rate.status();
  });
  app.delete("/_sandbox/rate-limit", async () => {
    rate.set(undefined);
    return rate.status();
  });
  app.get("/_sandbox/rate-limit", async () => rate.status());
  app.put("/_sandbox/latency", async (request, reply) => {
    const parsed = latencySchema.safeParse(request.body);
    if (!parsed.success) return reply.code(400).send({ error: `invalid latency (latencyMs is an integer of milliseconds, 0 to 600000): ${z.prettifyError(parsed.error)}` });
    latencyMs = parsed.data.latencyMs;
    return { latencyMs };
  });
  app.delete("/_sandbox/latency", async () => {
    latencyMs = 0;
    return { latencyMs };
  });
  app.get("/_sandbox/latency", async () => ({ latencyMs }));
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
      if (form === "connect") return reply.code(201).send(connectFieldsOf(credential));
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
  ownOrigin = originOf(host, address.port, options.tls);
  definition.listening?.(ownOrigin);
  return {
    url: ownOrigin,
    endpoints: definition.endpoints(ownOrigin),
    open: () => opened(),
    lost: () => lost,
    // The port goes last: new requests are turned away, those in flight finish, the state is written,
    // and only then may a standing-by process bind the port and read it.
    close: async () => {
      closing = true;
      opened();
      for (const wait of [...waiting]) wait.release();
      const until = Date.now() + DRAIN_TIMEOUT_MS;
      while (inFlight > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
      if (saver && !lost && !(await saver.flush())) loseIt();
      await app.close();
    },
  };
}

/**
 * Writes the state's snapshot to the store, one write at a time: a flush
 * asked for while one is under way is served by the next, which snapshots
 * after it. A snapshot equal to the last one stored is not written again.
 * A flush says false when the store refused the write: another process
 * claimed the sandbox.
 */
function stateSaver(state: object, persisting: Persisting): { flush(): Promise<boolean> } {
  let last = persisting.text;
  let running: Promise<boolean> | undefined;
  let next: Promise<boolean> | undefined;
  const save = async (): Promise<boolean> => {
    const text = devalue.stringify(state);
    if (text === last) return true;
    if (!(await persisting.store.saveState(persisting.provider, persisting.owner, text))) return false;
    last = text;
    return true;
  };
  const run = (): Promise<boolean> => {
    running = save().finally(() => {
      running = undefined;
    });
    return running;
  };
  return {
    flush() {
      if (!running) return run();
      next ??= running
        .catch(() => true)
        .then(() => {
          next = undefined;
          return run();
        });
      return next;
    },
  };
}

/**
 * The enforced rate: fixed windows aligned on multiples of `windowMs` on the
 * epoch clock, one count for every caller. Setting it (or removing it)
 * starts the window and the counts afresh.
 */
function enforcedRate(initial: SandboxRateLimit | undefined) {
  let rate = initial;
  let windowStart = Number.NaN;
  let inWindow = 0;
  let served = 0;
  let limited = 0;
  return {
    set(next: SandboxRateLimit | undefined): void {
      rate = next;
      windowStart = Number.NaN;
      inWindow = 0;
      served = 0;
      limited = 0;
    },
    status(): { rateLimit: SandboxRateLimit | null; served: number; limited: number } {
      return { rateLimit: rate ? { requests: rate.requests, windowMs: rate.windowMs } : null, served, limited };
    },
    /** Counts one request; undefined when no rate is enforced. */
    take(nowMs: number): { over: boolean; window: RateWindow } | undefined {
      if (!rate) return undefined;
      const start = Math.floor(nowMs / rate.windowMs) * rate.windowMs;
      if (start !== windowStart) {
        windowStart = start;
        inWindow = 0;
      }
      inWindow += 1;
      const over = inWindow > rate.requests;
      if (over) limited += 1;
      else served += 1;
      return { over, window: { limit: rate.requests, remaining: Math.max(0, rate.requests - inWindow), resetAtMs: start + rate.windowMs, windowMs: rate.windowMs } };
    },
  };
}

function takeFault(faults: Fault[], path: string): Fault | undefined {
  const index = faults.findIndex((f) => f.path === undefined || f.path === path);
  if (index < 0) return undefined;
  const fault = faults[index] as Fault;
  if (fault.skip !== undefined) {
    fault.skip -= 1;
    if (fault.skip <= 0) delete fault.skip;
    return undefined;
  }
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

export { codeChallengeS256 as challengeOf } from "../integrations/shared/oauth.js";
