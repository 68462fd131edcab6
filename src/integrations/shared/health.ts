/**
 * The `testConnection` and `health` hooks: a who-am-I through the session,
 * what it saw recorded as the connection's health, the v1 envelope answered.
 */
import { pickConnection, publicMetadata, toPublic, type ConnectionPublic } from "./connections.js";
import { connectionRevoked, ErrorCodes, IntegrationError } from "./errors.js";
import { toEnvelope, type ConnectionHealth } from "./healthEnvelope.js";
import type { Session } from "./session.js";
import { isOwnBusiness } from "./tokens.js";
import { checkUserId } from "./userId.js";
import type { ConnectionRecord, StoredHealth } from "./vault.js";

export type { ConnectionHealth } from "./healthEnvelope.js";

/** `testConnection`: the who-am-I with retries; what it saw is recorded, and a failure thrown. */
export async function testConnection(session: Session, userId: string, options?: { connectionId?: string }): Promise<Record<string, string | undefined>> {
  checkUserId(userId, session.provider);
  const record = await pickConnection(session, userId, options?.connectionId);
  if (record.revokedAt) throw connectionRevoked(session.provider, session.name, record.id);
  try {
    const identity = await session.probe(record, true);
    await session.recordHealth(record);
    return {
      connectionId: record.id,
      authMethod: record.authMethod,
      ...identity.summary,
      ...(identity.scopes ? { scopes: identity.scopes.join(",") } : {}),
    };
  } catch (error) {
    if (error instanceof IntegrationError && !session.recordedByRefresh.has(error) && !isOwnBusiness(error)) await session.recordHealth(record, error);
    throw error;
  }
}

/**
 * `health`: one attempt, reported as the v1 envelope and recorded; or, given `maxAgeMs`, the envelope
 * recorded last when it is younger than that (by a probe, a call, a refresh or the sweep): no call.
 */
export async function health(session: Session, userId: string, options?: { connectionId?: string; maxAgeMs?: number }): Promise<ConnectionHealth> {
  checkUserId(userId, session.provider);
  const { provider } = session;
  let record: ConnectionRecord;
  try {
    record = await pickConnection(session, userId, options?.connectionId);
  } catch (error) {
    if (error instanceof IntegrationError && error.code === ErrorCodes.NO_ACTIVE_CONNECTION) {
      return toEnvelope({
        health: { status: "down", checkedAt: session.nowIso(), auth: false, apiReachable: false, rateLimited: false, errorType: "auth", message: error.message },
        metadata: {},
      });
    }
    throw error;
  }
  const envelopeOf = (stored: StoredHealth, current: ConnectionRecord = record): ConnectionHealth =>
    toEnvelope({ health: stored, authMethod: current.authMethod, tokenRefreshStatus: current.tokenRefreshStatus, metadata: publicMetadata(current) });
  if (record.revokedAt) return envelopeOf(disconnectedHealth(session, record.revokedAt));
  const stored = record.lastHealth;
  if (stored && options?.maxAgeMs !== undefined && options.maxAgeMs > 0) {
    const age = session.clock.now() - Date.parse(stored.checkedAt);
    // A checkedAt ahead of this clock (another instance's) counts as fresh only within the same bound.
    if (Math.abs(age) < options.maxAgeMs) return envelopeOf(stored);
  }
  const outcome = await probeAndRecord(session, record);
  // A refresh may have changed the token, its expiry or its refresh status: report what is stored now.
  const current = await session.deps.vault.findConnection({ userId, provider, id: record.id });
  return envelopeOf(outcome, current ?? record);
}

/**
 * The health sweep's check of a connection it just scanned: `health`'s
 * probe, recorded the same way, without reading the connection again (the
 * scan did) and without building the envelope, which the sweep does not
 * read. Answers what was recorded; a disconnected connection is down and
 * not probed (nor recorded), as `health` answers it.
 */
export async function checkHealth(session: Session, record: ConnectionRecord): Promise<StoredHealth> {
  if (record.provider !== session.provider) throw new Error(`a ${record.provider} connection checked by the ${session.provider} connector`);
  if (record.revokedAt) return disconnectedHealth(session, record.revokedAt);
  // The sweep's many writes share commits (Vault.recordHealth's grouped), and its token reads are a scan's.
  return probeAndRecord(session, record, { sweep: true });
}

/** The one-attempt probe of `health`, its outcome recorded; our own state (another instance still refreshing) says nothing of the connection: thrown, not recorded. */
async function probeAndRecord(session: Session, record: ConnectionRecord, options?: { sweep?: boolean }): Promise<StoredHealth> {
  const writing = options?.sweep ? { grouped: true } : undefined;
  try {
    await session.probe(record, false, options?.sweep ? { scan: true } : undefined);
    return await session.recordHealth(record, undefined, writing);
  } catch (error) {
    if (!(error instanceof IntegrationError) || isOwnBusiness(error)) throw error;
    return session.recordedByRefresh.get(error) ?? (await session.recordHealth(record, error, writing));
  }
}

function disconnectedHealth(session: Session, revokedAt: string): StoredHealth {
  return {
    status: "down",
    checkedAt: session.nowIso(),
    auth: false,
    apiReachable: false,
    rateLimited: false,
    errorType: "auth",
    message: `this ${session.name} connection was disconnected at ${revokedAt}; connect again`,
  };
}

/** `recordedHealth`: each active connection of the user with its last recorded envelope, from the store alone. */
export async function recordedHealth(session: Session, userId: string): Promise<Array<{ connection: ConnectionPublic; health: ConnectionHealth | null }>> {
  checkUserId(userId, session.provider);
  const records = await session.deps.vault.listConnections({ userId, provider: session.provider });
  return records.map((record) => ({
    connection: toPublic(record),
    health: record.lastHealth
      ? toEnvelope({ health: record.lastHealth, authMethod: record.authMethod, tokenRefreshStatus: record.tokenRefreshStatus, metadata: publicMetadata(record) })
      : null,
  }));
}
