/**
 * The operator view's route: every user's connections counted by connector
 * and health status, the ones down and why, refreshes that failed for good,
 * the Jira ticket syncs' runs and revocations still owed at a provider.
 * Behind the operator token of the configuration (AUTOFLOW_OPERATOR_TOKEN),
 * never a user JWT; without one configured the view is off.
 */
import type { FastifyInstance } from "fastify";
import { ErrorCodes, IntegrationError } from "../integrations/shared/errors.js";
import { PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";
import type { ConnectorLifecycle } from "../integrations/shared/lifecycle.js";
import type { HealthStatusLabel, SqlOperations } from "../store/operations.js";
import { staticBearer, unauthenticated } from "./auth.js";
import { overviewQuery } from "../api/requests.js";
import { parseInput } from "./schemas.js";

export type OperatorDeps = {
  connectors: Record<ProviderId, ConnectorLifecycle>;
  operations: Pick<SqlOperations, "healthCounts" | "down" | "refreshFailures" | "owedRevocations" | "ticketSyncs">;
  /** Unset: the routes answer 404 saying how to turn the view on. */
  token?: string;
};

export function registerOperatorRoutes(app: FastifyInstance, deps: OperatorDeps): void {
  const allowed = deps.token === undefined ? undefined : staticBearer(deps.token);
  const operatorOnly = async (request: { headers: { authorization?: string | undefined } }) => {
    if (!allowed) {
      throw new IntegrationError({
        type: "schema",
        code: ErrorCodes.OPERATOR_VIEW_OFF,
        message: "the operator view is off: set AUTOFLOW_OPERATOR_TOKEN (at least 32 characters) and send it as Authorization: Bearer <token>",
      });
    }
    if (!allowed(request.headers.authorization)) throw unauthenticated("the operator view takes Authorization: Bearer <AUTOFLOW_OPERATOR_TOKEN>; user tokens are not accepted");
  };

  app.get("/api/operator/overview", { onRequest: operatorOnly }, async (request, reply) => {
    const { limit } = parseInput(overviewQuery, request.query, "query");
    const { operations } = deps;
    const [counts, down, refreshFailures, ticketSyncs, owedRevocations] = await Promise.all([
      operations.healthCounts(),
      operations.down(limit),
      operations.refreshFailures(limit),
      operations.ticketSyncs(limit),
      operations.owedRevocations(limit),
    ]);
    const zero = (): Record<HealthStatusLabel | "total", number> => ({ ok: 0, degraded: 0, down: 0, unchecked: 0, total: 0 });
    const connectors = PROVIDER_IDS.map((id) => {
      const tally = zero();
      for (const c of counts) {
        if (c.provider !== id) continue;
        tally[c.status] += c.count;
        tally.total += c.count;
      }
      return { provider: id, displayName: deps.connectors[id].definition.displayName, mode: deps.connectors[id].settings.mode, connections: tally };
    });
    reply.header("cache-control", "no-store");
    return { generatedAt: new Date().toISOString(), connectors, down, refreshFailures, ticketSyncs, owedRevocations };
  });
}
