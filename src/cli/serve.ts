/** `serve`: the service, until SIGINT or SIGTERM, which let requests in flight finish. */
import { loadConfig } from "../config.js";
import { createLogger } from "../server/logging.js";
import { startService } from "../service.js";

export async function serve(): Promise<number> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const service = await startService(config, { logger, listen: true });
  const port = new URL(service.url ?? `http://localhost:${config.port}`).port;
  logger.info(`AutoFlow Integrations listening on ${service.url}`);
  if (!config.jwtSecret) {
    logger.info(`no AUTOFLOW_JWT_SECRET set: get a token for the local service with "npx autoflow-integrations token --user alice" and call e.g. curl -H "Authorization: Bearer $TOKEN" http://localhost:${port}/api/integrations`);
  }
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "shutting down: finishing requests in flight");
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  return await new Promise<number>(() => undefined);
}
