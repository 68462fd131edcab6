/**
 * The Fastify application: body limits, the JSON parser, the one error
 * body, the v1 routes, liveness and metrics.
 */
import rateLimit from "@fastify/rate-limit";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { accessLoggerOf } from "./logging.js";
import type { Registry } from "prom-client";
import type { ProviderId } from "../integrations/registry.js";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import { staticBearer, type UserVerifier } from "./auth.js";
import { errorBody, sendError, toIntegrationError } from "./errors.js";
import { DEFAULT_LIMITS, type ServerLimits } from "./limits.js";
import type { ProxyLimits } from "../integrations/shared/proxy.js";
import { registerRoutes } from "./routes.js";
import type { ChangeToken } from "./keptAnswers.js";
import { registerApiDocsRoutes } from "./apiDocsRoutes.js";
import { registerResponseCheck } from "./responseCheck.js";
import { registerOperatorRoutes, type OperatorDeps } from "./operatorRoutes.js";
import { registerPageRoutes, type PageDeps } from "./pageRoutes.js";
import { registerTicketSyncRoutes } from "./ticketSyncRoutes.js";
import { registerTicketWebhookRoutes } from "./ticketWebhookRoutes.js";
import type { TicketSync } from "../integrations/jira/sync/ticketSync.js";
import type { TicketPush } from "../integrations/jira/sync/push.js";


export type ServerDeps = {
  connectors: Record<ProviderId, ConnectorLifecycle>;
  verifyUser: UserVerifier;
  logger: Logger;
  /** Database reachable and migrated; `/readyz` answers 503 otherwise. */
  readiness?: () => Promise<{ ready: boolean; detail?: string }>;
  metrics?: Registry;
  /** Counts each answered request by its route's pattern. */
  observeRequest?: (route: string, method: string, status: number, durationMs: number) => void;
  /** When set, `/metrics` answers only `Authorization: Bearer <this>`. */
  metricsToken?: string;
  limits?: Partial<ServerLimits>;
  proxyLimits?: ProxyLimits;
  /** GET .../health answers a stored envelope younger than this many seconds (see RouteDeps). */
  healthMaxAgeSeconds?: number;
  /** The connectors' clock (health's Age header is read on it). */
  now?: () => number;
  /** The connectors' store's change token, which GET .../connections and .../health answers are kept by (see RouteDeps). */
  storeChangeToken?: ChangeToken;
  /** The connect and health page and the operator view's page (served when given). */
  page?: PageDeps;
  /** The operator view's route (served when given; answers 404 until a token is configured). */
  operator?: Omit<OperatorDeps, "connectors">;
  /** Check every answer against its schema before it is sent (src/api/schemas.ts): development and tests. */
  checkResponses?: boolean;
  /** The Jira ticket sync, whose routes are served when it is given. */
  ticketSync?: TicketSync;
  /** Its push side (AutoFlow's writes to Jira), served with it. */
  ticketPush?: TicketPush;
};

/** Every route each app serves, as "METHOD /pattern" (HEAD routes Fastify adds for GETs left out). */
const SERVED = new WeakMap<FastifyInstance, Set<string>>();
export function servedRoutes(app: FastifyInstance): ReadonlySet<string> {
  return SERVED.get(app) ?? new Set();
}

/**
 * The access log: one line a request, as it is answered (the request, its URL's secrets redacted by the
 * serializer, its status and time), rather than Fastify's two (one as it arrives, one as it is answered).
 */
class AccessLog extends LogController {
  constructor(private readonly lines: Logger | undefined) {
    super();
  }
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    // An error goes through the request's logger and its redaction: its message may quote anything.
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, "request errored");
    else if (this.lines) {
      // At the request's own level (a route's logLevel, the service's).
      if ((reply.log as Logger).isLevelEnabled("info")) this.lines.info({ reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime }, "request completed");
    } else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, "request completed");
  }
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: limits.bodyLimit,
    // A head larger than this is answered 431 by Node before any of our code runs.
    // Node answers an HTTP/1.1 request without Host with a bare 400 of its own; the hook below
    // refuses it instead, in the one error body.
    http: { maxHeaderSize: limits.maxHeaderBytes, requireHostHeader: false },
    // No length limit of the router's own (it would answer a long id as an unknown route): a path
    // parameter is bounded by the request head, and each route's schema holds it to its rule.
    routerOptions: { maxParamLength: limits.maxHeaderBytes },
    requestIdHeader: false,
    logController: new AccessLog(accessLoggerOf(deps.logger)),
    return503OnClosing: true,
    // A request Node's HTTP parser refuses (bad characters in the request line, a head over the limit)
    // never reaches Fastify's routing: answer it on the socket, in the one error body.
    clientErrorHandler: (error, socket) => {
      const code = (error as { code?: string }).code ?? "";
      if (code === "ECONNRESET" || !socket.writable) {
        socket.destroy();
        return;
      }
      const tooLarge = code === "HPE_HEADER_OVERFLOW";
      const status = tooLarge ? 431 : 400;
      const body = JSON.stringify(
        errorBody(
          new IntegrationError({
            type: "schema",
            code: ErrorCodes.INVALID_INPUT,
            field: tooLarge ? "headers" : "request",
            message: tooLarge
              ? `the request line and headers are larger than ${limits.maxHeaderBytes} bytes`
              : `the HTTP request is malformed (${code || "unparsable"}): check the request line and header characters`,
          }),
        ),
      );
      socket.end(
        `HTTP/1.1 ${status} ${tooLarge ? "Request Header Fields Too Large" : "Bad Request"}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    },
    // Errors the router raises before any hook (a URL that does not decode) get the one error body too.
    frameworkErrors: (error, _request, reply) => {
      const message = error.code === "FST_ERR_BAD_URL" ? "the URL does not decode: fix its percent-encoding" : error.message;
      void sendError(reply, new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: "url", message }), 400);
    },
  });

  const served = new Set<string>();
  SERVED.set(app, served);
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) if (method !== "HEAD") served.add(`${method} ${route.url}`);
  });

  // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host (HTTP/1.0 needs none).
  // First of every hook, so nothing else runs for it.
  // Hooks on every request take a callback, not a promise: the path every answer takes stays short.
  app.addHook("onRequest", (request, _reply, done) => {
    if (request.raw.httpVersion === "1.1" && request.headers.host === undefined) {
      return done(new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: "host", message: "an HTTP/1.1 request must carry a Host header" }));
    }
    done();
  });

  // JSON only, parsed by us so that an empty body means "no body" (clients
  // often send Content-Type without one) and a malformed one is a clear 400.
  app.removeContentTypeParser(["application/json", "text/plain"]);
  // Parameters (charset=utf-8) are allowed after the media type, as RFC 9110 §8.3 has them.
  app.addContentTypeParser(/^application\/([\w.+-]+\+)?json\s*(;|$)/i, { parseAs: "string" }, (_request, body, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (!/\S/.test(text)) return done(null, undefined);
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (error) {
      const invalid = Object.assign(new Error(error instanceof Error ? error.message : "invalid JSON"), {
        statusCode: 400,
        code: "FST_ERR_CTP_INVALID_JSON_BODY",
      });
      done(invalid, undefined);
    }
  });

  // Graceful shutdown: a request in flight when closing starts still gets its answer, with
  // "Connection: close" so that a keep-alive client lets go and the server can finish closing.
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });

  app.setErrorHandler((thrown, request, reply) => {
    const { error, status, unexpected } = toIntegrationError(thrown);
    if (unexpected) request.log.error({ err: thrown }, "unhandled error");
    else request.log.info({ errorType: error.type, code: error.code, status }, "request failed");
    return sendError(reply, error, status);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new IntegrationError({
        type: "schema",
        code: ErrorCodes.ROUTE_NOT_FOUND,
        message: `no route ${request.method} ${request.url.split("?")[0]?.slice(0, 200)}; see GET /api/integrations`,
      }),
    ),
  );

  await app.register(rateLimit, {
    global: true,
    // After authentication, so the key is the verified user, not whatever a token claims.
    hook: "preHandler",
    max: limits.requestsPerMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => (request.userId ? `user:${request.userId}` : `ip:${request.ip}`),
    errorResponseBuilder: (_request, context) =>
      new IntegrationError({
        type: "rate-limit",
        code: ErrorCodes.TOO_MANY_REQUESTS,
        retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000)),
        message: `too many requests: at most ${context.max} a minute; retry after ${Math.max(1, Math.ceil(context.ttl / 1000))}s`,
      }),
  });

  app.get("/healthz", { config: { rateLimit: false } }, async () => ({ status: "ok" }));
  app.get("/readyz", { config: { rateLimit: false } }, async (_request, reply) => {
    const readiness = deps.readiness ? await deps.readiness().catch((e: unknown) => ({ ready: false, detail: String(e) })) : { ready: true };
    return reply.code(readiness.ready ? 200 : 503).send({ status: readiness.ready ? "ready" : "not_ready", ...(readiness.detail ? { detail: readiness.detail } : {}) });
  });
  if (deps.observeRequest) {
    const observe = deps.observeRequest;
    // The route's pattern, never the URL (which names connections and keys); unmatched requests share one label.
    app.addHook("onResponse", (request, reply, done) => {
      observe(request.routeOptions.url ?? "unmatched", request.method, reply.statusCode, reply.elapsedTime);
      done();
    });
  }
  if (deps.metrics) {
    const registry = deps.metrics;
    const allowed = deps.metricsToken === undefined ? undefined : staticBearer(deps.metricsToken);
    app.get("/metrics", { config: { rateLimit: false } }, async (request, reply) => {
      if (allowed) {
        if (!allowed(request.headers.authorization)) {
          return reply.code(401).header("www-authenticate", 'Bearer realm="metrics"').send(errorBody(new IntegrationError({ type: "auth", code: ErrorCodes.METRICS_TOKEN, message: "/metrics takes Authorization: Bearer <AUTOFLOW_METRICS_TOKEN>" })));
        }
      }
      return reply.header("content-type", registry.contentType).send(await registry.metrics());
    });
  }

  if (deps.checkResponses) registerResponseCheck(app);
  registerApiDocsRoutes(app);
  if (deps.page) registerPageRoutes(app, deps.page);
  if (deps.operator) registerOperatorRoutes(app, { connectors: deps.connectors, ...deps.operator });
  registerRoutes(app, {
    connectors: deps.connectors,
    verifyUser: deps.verifyUser,
    ...(deps.proxyLimits ? { proxyLimits: deps.proxyLimits } : {}),
    ...(deps.healthMaxAgeSeconds !== undefined ? { healthMaxAgeSeconds: deps.healthMaxAgeSeconds } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.storeChangeToken ? { storeChangeToken: deps.storeChangeToken } : {}),
  });
  if (deps.ticketSync) {
    registerTicketSyncRoutes(app, deps.ticketSync, deps.ticketPush);
    await registerTicketWebhookRoutes(app, deps.ticketSync);
  }
  return app;
}
