/**
 * The Jira ticket sync over HTTP: the configuration, runs and their status,
 * the ticket mirror and its change feed. Every route takes the user's JWT and
 * works on the user's newest Jira connection, or the one `connectionId` names.
 *
 *   PUT  /api/integrations/jira/sync/config     store the configuration (checked, its site against the grant's)
 *   GET  /api/integrations/jira/sync/config     the configuration and the sites the grant reaches
 *   POST /api/integrations/jira/sync            run a pull now ({"deleteScan": true} scans for deletes too)
 *   GET  /api/integrations/jira/sync            cursor, run in progress, last run, last delete scan
 *   GET  /api/integrations/jira/tickets         the mirror: filters, `limit`, `cursor` (nextCursor)
 *   GET  /api/integrations/jira/tickets/events  the change feed after `after` (a seq), oldest first
 *   GET  /api/integrations/jira/tickets/:key    one ticket by key or id
 *   POST  /api/integrations/jira/tickets                      create an issue (Idempotency-Key)
 *   PATCH /api/integrations/jira/tickets/:key                 update the fields named ({fields, baseUpdated?}); 409 with both versions on a conflict
 *   POST  /api/integrations/jira/tickets/:key/transitions     move to a status by name
 *   POST  /api/integrations/jira/tickets/:key/comments        comment (plain text)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { parseTicketCursor, type TicketSync } from "../integrations/jira/sync/ticketSync.js";
import { TicketConflict, type PushAnswer, type TicketPush } from "../integrations/jira/sync/push.js";
import { errorBody } from "./errors.js";
import { connectionQuery, eventsQuery, keyParams, runBody, ticketsQuery } from "../api/requests.js";
import { parseInput } from "./schemas.js";

export function registerTicketSyncRoutes(app: FastifyInstance, sync: TicketSync, push?: TicketPush): void {
  const authed = { config: { auth: true } };
  const userOf = (request: FastifyRequest): string => {
    if (!request.userId) throw new Error("authenticate hook did not run");
    return request.userId;
  };
  const optionsOf = (query: { connectionId?: string | undefined }) => (query.connectionId ? { connectionId: query.connectionId } : {});

  app.put("/api/integrations/jira/sync/config", authed, async (request) => {
    const query = parseInput(connectionQuery, request.query, "query");
    return sync.configure(userOf(request), request.body ?? {}, optionsOf(query));
  });
  app.get("/api/integrations/jira/sync/config", authed, async (request) => {
    const query = parseInput(connectionQuery, request.query, "query");
    return sync.config(userOf(request), optionsOf(query));
  });
  app.post("/api/integrations/jira/sync", authed, async (request) => {
    const query = parseInput(connectionQuery, request.query, "query");
    const body = parseInput(runBody, request.body, "body");
    const run = await sync.run(userOf(request), { ...optionsOf(query), ...(body?.deleteScan !== undefined ? { deleteScan: body.deleteScan } : {}) });
    return { run };
  });
  app.get("/api/integrations/jira/sync", authed, async (request) => {
    const query = parseInput(connectionQuery, request.query, "query");
    return sync.status(userOf(request), optionsOf(query));
  });
  app.get("/api/integrations/jira/tickets", authed, async (request) => {
    const query = parseInput(ticketsQuery, request.query, "query");
    const after = parseTicketCursor(query.cursor);
    return sync.tickets(
      userOf(request),
      {
        ...(query.project ? { project: query.project } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.assignee ? { assigneeAccountId: query.assignee } : {}),
        ...(query.label ? { label: query.label } : {}),
        includeDeleted: query.includeDeleted === "true",
        ...(query.limit ? { limit: query.limit } : {}),
        ...(after ? { after } : {}),
      },
      optionsOf(query),
    );
  });
  app.get("/api/integrations/jira/tickets/events", authed, async (request) => {
    const query = parseInput(eventsQuery, request.query, "query");
    return sync.events(userOf(request), query.after, query.limit, optionsOf(query));
  });
  app.get<{ Params: { key: string } }>("/api/integrations/jira/tickets/:key", authed, async (request) => {
    const query = parseInput(connectionQuery, request.query, "query");
    const { key } = parseInput(keyParams, request.params, "params");
    const ticket = await sync.ticket(userOf(request), key, optionsOf(query));
    if (!ticket) throw new IntegrationError({ type: "schema", code: ErrorCodes.TICKET_NOT_FOUND, field: "key", provider: "jira", message: `no ticket ${key} in this connection's mirror` });
    return { ticket };
  });

  if (!push) return;
  const idempotencyKeyOf = (request: FastifyRequest): string | undefined => {
    const value = request.headers["idempotency-key"];
    if (Array.isArray(value)) throw new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: "Idempotency-Key", provider: "jira", message: "Idempotency-Key: send one" });
    return value;
  };
  const writeOptions = (request: FastifyRequest, query: { connectionId?: string | undefined }) => {
    const key = idempotencyKeyOf(request);
    return { ...optionsOf(query), ...(key !== undefined ? { idempotencyKey: key } : {}) };
  };
  const answer = (reply: FastifyReply, result: PushAnswer) => {
    if (result.replayed) reply.header("idempotent-replayed", "true");
    return reply.code(result.status).send(result.body);
  };
  app.post("/api/integrations/jira/tickets", authed, async (request, reply) => {
    const query = parseInput(connectionQuery, request.query, "query");
    return answer(reply, await push.create(userOf(request), request.body, writeOptions(request, query)));
  });
  app.patch<{ Params: { key: string } }>("/api/integrations/jira/tickets/:key", authed, async (request, reply) => {
    const query = parseInput(connectionQuery, request.query, "query");
    const { key } = parseInput(keyParams, request.params, "params");
    try {
      return answer(reply, await push.update(userOf(request), key, request.body, writeOptions(request, query)));
    } catch (error) {
      // Both versions of each field changed on both sides, beside the one error body.
      if (error instanceof TicketConflict) return reply.code(409).header("cache-control", "no-store").send({ ...errorBody(error), conflicts: error.conflicts, jiraUpdated: error.jiraUpdated });
      throw error;
    }
  });
  app.post<{ Params: { key: string } }>("/api/integrations/jira/tickets/:key/transitions", authed, async (request, reply) => {
    const query = parseInput(connectionQuery, request.query, "query");
    const { key } = parseInput(keyParams, request.params, "params");
    return answer(reply, await push.transition(userOf(request), key, request.body, writeOptions(request, query)));
  });
  app.post<{ Params: { key: string } }>("/api/integrations/jira/tickets/:key/comments", authed, async (request, reply) => {
    const query = parseInput(connectionQuery, request.query, "query");
    const { key } = parseInput(keyParams, request.params, "params");
    return answer(reply, await push.comment(userOf(request), key, request.body, writeOptions(request, query)));
  });
}
