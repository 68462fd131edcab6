/**
 * `connections list`: what the vault holds, read from the database alone (no
 * provider is called): each connection's public fields and its last
 * recorded health. `--status unchecked` names the connections never probed.
 * Exit codes: 0 listed (even none), 1 no database to read, 2 a mistake in the arguments.
 */
import { existsSync } from "node:fs";
import { loadConfig } from "../config.js";
import type { ProviderId } from "../integrations/registry.js";
import type { ConnectionRecord } from "../integrations/shared/vault.js";
import { storeLocation } from "../service.js";
import { loadKeyring, openStore, type SqlVault } from "../store/index.js";
import type { CommandIo } from "./command.js";
import { paintStatus, renderTable } from "./output.js";
import { HEALTH_STATUS_LABELS } from "../store/operations.js";

export const LIST_STATUSES = HEALTH_STATUS_LABELS;
export type ListStatus = (typeof LIST_STATUSES)[number];

/** Rows read from the vault per page. */
const PAGE_SIZE = 500;

/** Every connection the query names, of every user, page by page through the vault (by id). */
export async function* browseAll(
  vault: Pick<SqlVault, "browseConnections">,
  query: { userId?: string; provider?: string; includeRevoked?: boolean },
): AsyncGenerator<ConnectionRecord> {
  let afterId: string | undefined;
  for (;;) {
    const page = await vault.browseConnections({ ...query, limit: PAGE_SIZE, ...(afterId ? { afterId } : {}) });
    yield* page;
    if (page.length < PAGE_SIZE) return;
    afterId = page[page.length - 1]?.id;
  }
}

export type ListOptions = { user?: string; provider?: ProviderId; status?: ListStatus; includeRevoked?: boolean; json?: boolean };

/** A connection as listed: public fields only (the token masked, as everywhere). */
export type ListedConnection = {
  id: string;
  provider: string;
  userId: string;
  authMethod: string;
  tokenMasked: string;
  tokenRefreshStatus: string;
  health: { status: ListStatus; checkedAt?: string; errorType?: string };
  createdAt: string;
  revokedAt?: string;
};

export async function listConnections(options: ListOptions, io: CommandIo, terminal: { colour: boolean }): Promise<number> {
  const config = loadConfig(io.env);
  const location = storeLocation(config);
  // A read-only command: a mistyped AUTOFLOW_DATA_DIR is said, not answered with a new, empty database.
  if ("sqlitePath" in location && !existsSync(location.sqlitePath)) {
    io.err(`no database at ${location.sqlitePath}: run this where serve runs, or with its AUTOFLOW_DATA_DIR (or DATABASE_URL)\n`);
    return 1;
  }
  const { keys } = loadKeyring({ envValue: config.encryptionKey, oldValues: config.encryptionKeysOld, dataDir: config.dataDir, log: (m) => io.err(`${m}\n`) });
  const store = await openStore({ ...location, keys });
  try {
    const listed: ListedConnection[] = [];
    for await (const record of browseAll(store.vault, { ...(options.user === undefined ? {} : { userId: options.user }), ...(options.provider ? { provider: options.provider } : {}), includeRevoked: options.includeRevoked === true })) {
      const entry = listedOf(record);
      if (options.status === undefined || entry.health.status === options.status) listed.push(entry);
    }
    if (options.json) io.out(`${JSON.stringify({ total: listed.length, connections: listed }, null, 2)}\n`);
    else io.out(`${table(listed, options.includeRevoked === true, terminal.colour)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

function listedOf(record: ConnectionRecord): ListedConnection {
  const last = record.lastHealth;
  return {
    id: record.id,
    provider: record.provider,
    userId: record.userId,
    authMethod: record.authMethod,
    tokenMasked: record.tokenMasked,
    tokenRefreshStatus: record.tokenRefreshStatus,
    health: last
      ? { status: last.status, checkedAt: last.checkedAt, ...(last.errorType ? { errorType: last.errorType } : {}) }
      : { status: "unchecked" },
    createdAt: record.createdAt,
    ...(record.revokedAt ? { revokedAt: record.revokedAt } : {}),
  };
}

function table(listed: readonly ListedConnection[], withRevoked: boolean, tty: boolean): string {
  if (listed.length === 0) return "no connections";
  const head = ["id", "provider", "user", "auth method", "token", "token refresh", "health", "checked at", "error type", "created", ...(withRevoked ? ["revoked"] : [])];
  const rows = listed.map((c) => [
    c.id,
    c.provider,
    c.userId,
    c.authMethod,
    c.tokenMasked,
    c.tokenRefreshStatus,
    paintStatus(c.health.status, tty),
    c.health.checkedAt,
    c.health.errorType,
    c.createdAt,
    ...(withRevoked ? [c.revokedAt] : []),
  ]);
  return `${renderTable(head, rows, tty)}\n${listed.length} connection${listed.length === 1 ? "" : "s"}`;
}
