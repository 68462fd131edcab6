/**
 * A user's connections: the public shape of a stored connection, picking
 * the one a call means (named, or the newest active), and listing them.
 */
import type { Tier1ConnectionPublic } from "./contract.js";
import { ErrorCodes, IntegrationError } from "./errors.js";
import type { Session } from "./session.js";
import { checkUserId } from "./userId.js";
import type { ConnectionRecord } from "./vault.js";

export type ConnectionPublic = Tier1ConnectionPublic<string, Record<string, unknown>>;

/** The frozen common fields, then the connector's metadata (and its scopes). */
export function toPublic(record: ConnectionRecord): ConnectionPublic {
  const base = {
    id: record.id,
    userId: record.userId,
    authMethod: record.authMethod,
    tokenMasked: record.tokenMasked,
    createdAt: record.createdAt,
    ...(record.revokedAt ? { revokedAt: record.revokedAt } : {}),
  };
  return { ...base, scopes: record.scopes, ...record.metadata } as ConnectionPublic;
}

export function publicMetadata(record: ConnectionRecord): Record<string, unknown> {
  return { scopes: record.scopes, ...record.metadata };
}

/** The connection `connectionId`, or the user's newest active one. */
export async function pickConnection(session: Session, userId: string, connectionId?: string): Promise<ConnectionRecord> {
  const { provider } = session;
  if (connectionId !== undefined) {
    checkConnectionId(connectionId, provider);
    const found = await session.deps.vault.findConnection({ userId, provider, id: connectionId });
    if (!found) throw notFound(provider, connectionId);
    return found;
  }
  const [newest] = await session.deps.vault.listConnections({ userId, provider });
  if (!newest) {
    throw new IntegrationError({
      type: "schema",
      code: ErrorCodes.NO_ACTIVE_CONNECTION,
      provider,
      message: `no active ${session.name} connection for this user; connect one first`,
    });
  }
  return newest;
}

export async function listConnections(session: Session, userId: string, options?: { includeRevoked?: boolean }): Promise<ConnectionPublic[]> {
  checkUserId(userId, session.provider);
  const records = await session.deps.vault.listConnections({ userId, provider: session.provider, includeRevoked: options?.includeRevoked ?? false });
  return records.map(toPublic);
}

/** Connection ids are ours (`conn_` + base64url); anything else cannot exist. */
export const CONNECTION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function checkConnectionId(id: unknown, provider: string): void {
  if (typeof id !== "string" || !CONNECTION_ID_PATTERN.test(id)) throw notFound(provider, String(id));
}

function notFound(provider: string, id: string): IntegrationError {
  return new IntegrationError({
    type: "schema",
    code: ErrorCodes.CONNECTION_NOT_FOUND,
    provider,
    field: "connectionId",
    message: `no ${provider} connection ${JSON.stringify(id.slice(0, 80))} for this user`,
  });
}
