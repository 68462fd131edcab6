/**
 * Where Jira delivers the ticket sync's webhooks. No user token: Jira calls
 * it, and each delivery proves itself instead (webhooks.ts): a dynamic
 * webhook's bearer JWT under the app's client secret, or an admin webhook's
 * X-Hub-Signature under AUTOFLOW_JIRA_WEBHOOK_SECRET.
 *
 *   POST /api/integrations/jira/webhooks[?connectionId=]   200 {received, duplicate, via, outcomes}
 *                                                          401 unverified, 403 unattributable, 404 unknown connection
 *
 * The route lives in a plugin of its own, whose JSON parser keeps the body
 * as the bytes that came (the HMAC is over them, not over a re-serialization).
 */
import type { FastifyInstance } from "fastify";
import { webhookRefusalStatus, WEBHOOK_PATH } from "../integrations/jira/sync/webhooks.js";
import type { TicketSync } from "../integrations/jira/sync/ticketSync.js";
import type { IntegrationError } from "../integrations/shared/errors.js";
import { sendError } from "./errors.js";
import { connectionQuery } from "../api/requests.js";
import { parseInput } from "./schemas.js";

export async function registerTicketWebhookRoutes(app: FastifyInstance, sync: TicketSync): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(/^application\/([\w.+-]+\+)?json\s*(;|$)/, { parseAs: "buffer" }, (_request, body, done) => done(null, body));
    // Not under the per-caller request limit: Jira sends a burst when many issues change, and each delivery is
    // checked (a JWT or an HMAC, no database) before anything else is done with it.
    scope.post(WEBHOOK_PATH, { config: { rateLimit: false } }, async (request, reply) => {
      const query = parseInput(connectionQuery, request.query, "query");
      const rawBody = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      try {
        return await sync.webhooks.receive({ headers: request.headers, rawBody, ...(query.connectionId ? { connectionId: query.connectionId } : {}) });
      } catch (error) {
        const status = webhookRefusalStatus(error);
        if (status === undefined) throw error;
        request.log.info({ status, code: (error as IntegrationError).code }, "jira webhook refused");
        return sendError(reply, error as IntegrationError, status);
      }
    });
  });
}
