/**
 * The v1 routes: a thin layer over the SDK. Each handler validates its input,
 * calls one lifecycle hook and shapes the answer; errors go to the one error
 * body through the app's error handler.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { isProviderId, PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import { describeActions, type ActionDescription } from "../integrations/shared/action.js";
import { createBrowserBinding } from "../integrations/shared/oauth.js";
import { CONNECTION_ID_HEADER, DEFAULT_PROXY_LIMITS, ERROR_TYPE_HEADER, proxyInputSchema, type ProxyLimits } from "../integrations/shared/proxy.js";
import type { UserVerifier } from "./auth.js";
import { bindingFromCookies, clearBindingCookie, setBindingCookie } from "./bindingCookie.js";
import { sendError, toIntegrationError } from "./errors.js";
import { CALLBACK_HEADERS, callbackPage } from "./pages.js";
import { completeBody, connectBody, connectionParams, connectionQuery, emptyBody, healthQuery, listQuery, startBody } from "../api/requests.js";
import { DEFAULT_HEALTH_MAX_AGE_SECONDS } from "./limits.js";
import { parseInput } from "./schemas.js";
import { keptAnswers, type ChangeToken } from "./keptAnswers.js";

/** What Fastify sends an object as; a kept answer is sent as the same. */
const JSON_TYPE = "application/json; charset=utf-8";

export type RouteDeps = {
  connectors: Record<ProviderId, ConnectorLifecycle>;
  verifyUser: UserVerifier;
  /** Bounds on proxied calls (the route's own body limit leaves room for the JSON around the body). */
  proxyLimits?: ProxyLimits;
  /**
   * GET .../health answers the envelope last recorded when it is younger than this (seconds), unless the
   * request's `maxAge` says otherwise; 0 probes on every request. {@link DEFAULT_HEALTH_MAX_AGE_SECONDS} by default.
   */
  healthMaxAgeSeconds?: number;
  /** The clock health's age is read on, and kept health answers judged by (the connectors' own; the system's by default). */
  now?: () => number;
  /**
   * The connectors' store's change token (SqlVault.changeToken): GET .../connections answers, and GET
   * .../health answers within their max age, are kept by it, so a poll while nothing changed is answered
   * from memory (src/server/keptAnswers.ts). None: every request reads.
   */
  storeChangeToken?: ChangeToken;
};

declare module "fastify" {
  interface FastifyRequest {
    userId?: string;
  }
  interface FastifyContextConfig {
    /** The route takes a user JWT. */
    auth?: boolean;
  }
}

type ProviderParams = { provider: string };

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const described = new Map<ProviderId, ActionDescription[]>();
  const actionsOf = (id: ProviderId): ActionDescription[] => {
    let list = described.get(id);
    if (!list) described.set(id, (list = describeActions(deps.connectors[id].actionMap)));
    return list;
  };
  const connectorOf = (request: FastifyRequest): ConnectorLifecycle => {
    const { provider } = request.params as ProviderParams;
    if (!isProviderId(provider)) {
      throw new IntegrationError({
        type: "schema",
        code: ErrorCodes.UNKNOWN_PROVIDER,
        field: "provider",
        message: `unknown provider ${JSON.stringify(provider.slice(0, 64))}; known providers: ${PROVIDER_IDS.join(", ")}`,
      });
    }
    return deps.connectors[provider];
  };
  const userOf = (request: FastifyRequest): string => {
    if (!request.userId) throw new Error("authenticate hook did not run");
    return request.userId;
  };
  // Authenticated before anything else runs (the per-user rate limit needs to know who is asking).
  app.addHook("onRequest", (request, _reply, done) => {
    if (!request.routeOptions.config?.auth) return done();
    deps.verifyUser(request.headers.authorization).then(
      (user) => {
        request.userId = user.userId;
        done();
      },
      (error: unknown) => done(error as Error),
    );
  });
  const authed = { config: { auth: true } };

  app.get("/api/integrations", authed, async () => ({
    providers: PROVIDER_IDS.map((id) => {
      const { definition, settings } = deps.connectors[id];
      return {
        id,
        displayName: definition.displayName,
        authMethods: definition.authMethods,
        oauthAuthMethod: definition.oauthAuthMethod,
        pkce: definition.pkce,
        // Whether POST .../connections takes a baseUrl (a self-hosted or per-site instance), so a UI knows to ask.
        acceptsBaseUrl: definition.acceptsBaseUrl ?? false,
        // Whether it takes the account's email with the key (Jira Cloud API tokens).
        acceptsEmail: definition.acceptsEmail ?? false,
        // The connection fields that name the account (a workspace, a site, an email), first found first shown.
        accountLabel: definition.accountLabel ?? definition.requiredMetadata,
        scopes: settings.scopes,
        mode: settings.mode,
        ...(settings.sandboxUrl ? { sandboxUrl: settings.sandboxUrl } : {}),
        redirectUri: settings.redirectUri,
        // What POST .../actions/:action takes and answers, as JSON Schema from the same zod schemas.
        actions: actionsOf(id),
      };
    }),
  }));

  // The signed-in user's connections at every connector, with the health last recorded for each: no provider call.
  app.get("/api/integrations/connections", authed, async (request) => {
    const userId = userOf(request);
    const lists = await Promise.all(PROVIDER_IDS.map(async (id) => (await deps.connectors[id].recordedHealth(userId)).map((entry) => ({ provider: id, ...entry }))));
    return { connections: lists.flat() };
  });

  // Called by the user's browser: the flow is bound to it by a cookie only the callback sees (RFC 9700 §4.5).
  app.post<{ Params: ProviderParams }>("/api/integrations/:provider/oauth/start", authed, async (request, reply) => {
    const connector = connectorOf(request);
    const body = parseInput(startBody, request.body, "body");
    const browserBinding = createBrowserBinding();
    const begun = connector.beginOAuth(userOf(request), { ...(body?.returnTo ? { returnTo: body.returnTo } : {}), browserBinding });
    const { redirectUri } = connector.settings;
    reply.header("set-cookie", setBindingCookie({ redirectUri, state: begun.state, binding: browserBinding, maxAgeSeconds: begun.expiresInSeconds }));
    // Never cached: the answer carries a fresh state and sets a cookie.
    reply.header("cache-control", "no-store");
    return begun;
  });

  app.post<{ Params: ProviderParams }>("/api/integrations/:provider/oauth/complete", authed, async (request, reply) => {
    const connector = connectorOf(request);
    const body = parseInput(completeBody, request.body, "body");
    const connection = await connector.completeOAuth({ ...body, userId: userOf(request) });
    return reply.code(201).send(connection);
  });

  // The browser's redirect target: no bearer token. The state names the user; the flow's cookie shows
  // this is the browser that began it. Without that cookie the code is not exchanged.
  app.get<{ Params: ProviderParams }>("/api/integrations/:provider/oauth/callback", async (request, reply) => {
    const connector = connectorOf(request);
    const name = connector.definition.displayName;
    reply.headers(CALLBACK_HEADERS);
    const raw = request.raw.url ?? "";
    const query = new URLSearchParams(raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : "");
    // Only an address sealed in a state we issued, checked against the allow-list when the flow began:
    // never one this request supplies. What it carries back is the outcome, never a code or token.
    const states = query.getAll("state");
    const state = states.length === 1 ? (states[0] as string) : undefined;
    const returnTo = state === undefined ? undefined : connector.returnToOf(state);
    const { redirectUri } = connector.settings;
    const browserBinding = state === undefined ? undefined : bindingFromCookies(request.headers.cookie, { redirectUri, state });
    const back = (outcome: Record<string, string>) => {
      const target = new URL(returnTo as string);
      target.searchParams.set("integration", connector.id);
      for (const [key, value] of Object.entries(outcome)) target.searchParams.set(key, value);
      return reply.code(303).header("location", target.toString()).send();
    };
    try {
      const connection = (await connector.completeOAuthCallback(query, browserBinding === undefined ? {} : { browserBinding })) as Record<string, unknown>;
      // The flow is done; its cookie opens nothing any more. (Kept after a failure, which may be a forged
      // callback sent to this browser before the provider's real one.)
      reply.header("set-cookie", clearBindingCookie({ redirectUri, state: state as string }));
      if (returnTo) return back({ status: "connected", connectionId: String(connection.id) });
      const labels = connector.definition.accountLabel ?? connector.definition.requiredMetadata;
      const account = labels.map((k) => connection[k]).find((v) => typeof v === "string" || typeof v === "number");
      return reply.code(200).send(
        callbackPage({
          ok: true,
          title: `${name} is connected`,
          lines: [
            `${name}${account ? ` (${String(account)})` : ""} is now connected to AutoFlow.`,
            `Connection ${String(connection.id)}, credential ${String(connection.tokenMasked)}.`,
          ],
        }),
      );
    } catch (thrown) {
      const { error, status, unexpected } = toIntegrationError(thrown);
      if (unexpected) request.log.error({ err: thrown }, "OAuth callback failed");
      if (returnTo) return back({ status: "error", error: error.code ?? error.type });
      const declined = error.code === "access_denied";
      return reply.code(declined ? 400 : status).send(
        callbackPage({
          ok: false,
          title: declined ? `${name} was not connected` : `Could not connect ${name}`,
          lines: [declined ? `You declined the request at ${name}; nothing was connected.` : error.message, "Start the connection again from AutoFlow."],
        }),
      );
    }
  });

  app.post<{ Params: ProviderParams }>("/api/integrations/:provider/connections", authed, async (request, reply) => {
    const connector = connectorOf(request);
    const body = parseInput(connectBody, request.body, "body");
    const connection = await connector.connectApiKey({ userId: userOf(request), ...body });
    return reply.code(201).send(connection);
  });

  const listings = keptAnswers(deps.storeChangeToken);
  app.get<{ Params: ProviderParams }>("/api/integrations/:provider/connections", authed, async (request, reply) => {
    const connector = connectorOf(request);
    const query = parseInput(listQuery, request.query, "query");
    const userId = userOf(request);
    const includeRevoked = query.includeRevoked === "true";
    const { text } = await listings.json([connector.id, userId, includeRevoked], async () => ({
      body: { connections: await connector.listConnections(userId, { includeRevoked }) },
      extra: undefined,
    }));
    return reply.type(JSON_TYPE).send(text);
  });

  app.post<{ Params: ProviderParams }>("/api/integrations/:provider/test", authed, async (request) => {
    const connector = connectorOf(request);
    parseInput(emptyBody, request.body, "body");
    const query = parseInput(connectionQuery, request.query, "query");
    return connector.testConnection(userOf(request), query.connectionId ? { connectionId: query.connectionId } : {});
  });

  const healthMaxAgeSeconds = deps.healthMaxAgeSeconds ?? DEFAULT_HEALTH_MAX_AGE_SECONDS;
  const now = deps.now ?? Date.now;
  // Kept by the store's token and, like the stored envelope itself, only within the max age of its check.
  const envelopes = keptAnswers<{ checkedAt: number }>(deps.storeChangeToken, { now });
  app.get<{ Params: ProviderParams }>("/api/integrations/:provider/health", authed, async (request, reply) => {
    const connector = connectorOf(request);
    const query = parseInput(healthQuery, request.query, "query");
    const maxAgeMs = 1000 * (query.maxAge ?? healthMaxAgeSeconds);
    const userId = userOf(request);
    const asked = now();
    const make = async () => {
      const envelope = await connector.health(userId, { ...(query.connectionId ? { connectionId: query.connectionId } : {}), maxAgeMs });
      const checkedAt = Date.parse(envelope.checkedAt);
      // Only an envelope checked before this request came is the stored one. One checked now (a probe's, or
      // the down answer for no connection or a disconnected one, which say "now") is this request's alone.
      if (!(checkedAt < asked)) return { body: envelope, extra: { checkedAt }, keep: false as const };
      return { body: envelope, extra: { checkedAt }, within: { from: checkedAt - maxAgeMs, until: checkedAt + maxAgeMs } };
    };
    // maxAge 0 asks for a probe now: its envelope is checked now, so it is not kept (and its window is empty).
    const answer = await envelopes.json([connector.id, userId, query.connectionId ?? "", maxAgeMs], make);
    // RFC 9111 §5.1: how old the answer is, in seconds (0 for a probe just made).
    reply.header("age", String(Math.max(0, Math.floor((now() - answer.extra.checkedAt) / 1000))));
    return reply.type(JSON_TYPE).send(answer.text);
  });

  app.post<{ Params: ProviderParams & { action: string } }>("/api/integrations/:provider/actions/:action", authed, async (request) => {
    const connector = connectorOf(request);
    const query = parseInput(connectionQuery, request.query, "query");
    // The body is the action's input; an empty body is an empty input (actions whose fields all have defaults).
    return connector.runAction(userOf(request), request.params.action, request.body ?? {}, query.connectionId ? { connectionId: query.connectionId } : {});
  });

  const proxyLimits = deps.proxyLimits ?? DEFAULT_PROXY_LIMITS;
  // A body escaped into the JSON envelope may grow up to six-fold (\u0000); the proxy measures what it sends itself.
  const proxyBodyLimit = 6 * proxyLimits.maxRequestBytes + 64 * 1024;
  app.post<{ Params: ProviderParams }>("/api/integrations/:provider/proxy", { ...authed, bodyLimit: proxyBodyLimit }, async (request, reply) => {
    const connector = connectorOf(request);
    const input = parseInput(proxyInputSchema, request.body, "body");
    const answer = await connector.request(userOf(request), input);
    reply.code(answer.status).headers(answer.headers).header(CONNECTION_ID_HEADER, answer.connectionId);
    if (answer.errorType) reply.header(ERROR_TYPE_HEADER, answer.errorType);
    return reply.send(Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength));
  });

  app.delete<{ Params: ProviderParams & { id: string } }>("/api/integrations/:provider/connections/:id", authed, async (request, reply: FastifyReply) => {
    const connector = connectorOf(request);
    const { id } = parseInput(connectionParams, { id: request.params.id }, "params");
    const report = await connector.disconnectWithReport(userOf(request), id);
    if (!report) {
      return sendError(
        reply,
        new IntegrationError({
          type: "schema",
          code: ErrorCodes.CONNECTION_NOT_FOUND,
          field: "id",
          provider: connector.id,
          message: `no ${connector.id} connection ${JSON.stringify(id)} for this user`,
        }),
      );
    }
    return { disconnected: true, ...report };
  });
}
