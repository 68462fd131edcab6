/**
 * Disconnecting: under the connection's refresh lock, revoke at the provider
 * what is current and say how it went; a revocation the provider could not
 * be reached for is owed (the encrypted tokens are kept) and settled later,
 * by a repeated DELETE or the revoke-pending job. The outcomes are
 * `ProviderRevocation`'s (vault.ts).
 */
import { checkConnectionId, toPublic, type ConnectionPublic } from "./connections.js";
import { IntegrationError } from "./errors.js";
import type { Session } from "./session.js";
import { checkUserId } from "./userId.js";
import type { ConnectionRecord, ProviderRevocation } from "./vault.js";

export type { ProviderRevocation } from "./vault.js";

export type DisconnectReport<TPublic = ConnectionPublic> = {
  connection: TPublic;
  revocation: ProviderRevocation;
  note?: string;
};

/** `disconnect`, saying how the revocation at the provider went; undefined when the user has no such connection. */
export async function disconnectWithReport(session: Session, userId: string, credentialId: string): Promise<DisconnectReport | undefined> {
  const { deps, provider, tokens, nowIso } = session;
  checkUserId(userId, provider);
  checkConnectionId(credentialId, provider);
  const found = await deps.vault.findConnection({ userId, provider, id: credentialId });
  if (!found) return undefined;
  // Under the refresh lock: a refresh in flight anywhere finishes first, and what is revoked is
  // what is current after it (read again here), never a grant that a refresh just replaced.
  return tokens.exclusive(found, async () => {
    const record = (await deps.vault.findConnection({ userId, provider, id: credentialId })) ?? found;
    if (record.revokedAt) return repeatDisconnect(session, record);
    const { revocation, note } = await revokeAtProvider(session, record);
    const revokedAt = nowIso();
    const updated = await deps.vault.markRevoked({
      userId,
      provider,
      id: record.id,
      revokedAt,
      eraseSecrets: revocation !== "pending",
      revocation,
      ...(revocation === "revoked" ? { providerRevokedAt: revokedAt } : {}),
    });
    deps.logger?.info({ connectionId: record.id, userId, revocation }, "connection disconnected");
    return { connection: toPublic(updated ?? record), revocation, ...(note ? { note } : {}) };
  });
}


/** Settles a revocation owed since a disconnect could not reach the provider (the revoke-pending job). */
export async function retryRevocation(session: Session, record: ConnectionRecord): Promise<ProviderRevocation> {
  const { deps, provider, tokens } = session;
  if (!record.revokedAt || record.providerRevokedAt) return "revoked";
  return tokens.exclusive(record, async () => {
    const current = (await deps.vault.findConnection({ userId: record.userId, provider, id: record.id })) ?? record;
    // Settled meanwhile (a repeated DELETE, another instance's job): nothing owed any more.
    if (current.providerRevokedAt) return "revoked";
    if (current.revocation !== undefined && current.revocation !== "pending") return current.revocation;
    return (await settleOwedRevocation(session, { ...current, revokedAt: current.revokedAt ?? (record.revokedAt as string) })).revocation;
  });
}

/**
 * Revokes a connection's credential at the provider, and says how it went.
 * A failure other than the provider refusing the credential leaves the
 * revocation owed (`pending`): the encrypted tokens are kept for a retry.
 */
async function revokeAtProvider(session: Session, record: ConnectionRecord): Promise<{ revocation: ProviderRevocation; note?: string }> {
  const { definition, deps, name, contextFor } = session;
  try {
    // Read as a scan's: a token being revoked is not one to keep in place of another in use.
    const secrets = await deps.vault.readSecrets(record, { scan: true });
    const revocation = await definition.revoke(contextFor(record.baseUrl), { connection: record, ...secrets });
    return revocation === "not_supported"
      ? { revocation, note: `${name} has no way to revoke this kind of credential; it was erased here (roll it at ${name} to be sure)` }
      : { revocation };
  } catch (error) {
    if (error instanceof IntegrationError && error.type === "auth") {
      return { revocation: "already_invalid", note: `${name} no longer accepted the credential, so there was nothing left to revoke` };
    }
    deps.logger?.warn({ connectionId: record.id, err: error instanceof Error ? error.message : String(error) }, "provider revocation failed");
    return {
      revocation: "pending",
      note: `${name} could not be reached to revoke the credential; it is disconnected here and the revocation is owed (retried in the background)`,
    };
  }
}

/**
 * Tries again a revocation owed since a disconnect could not reach the
 * provider; once the provider answers, the secrets are erased and the
 * outcome recorded. Call under the connection's lock.
 */
async function settleOwedRevocation(session: Session, record: ConnectionRecord & { revokedAt: string }): Promise<{ record: ConnectionRecord; revocation: ProviderRevocation; note?: string }> {
  const { deps, provider, nowIso } = session;
  const { revocation, note } = await revokeAtProvider(session, record);
  if (revocation === "pending") return { record, revocation, ...(note ? { note } : {}) };
  const updated = await deps.vault.markRevoked({
    userId: record.userId,
    provider,
    id: record.id,
    revokedAt: record.revokedAt,
    eraseSecrets: true,
    revocation,
    ...(revocation === "revoked" ? { providerRevokedAt: nowIso() } : {}),
  });
  deps.logger?.info({ connectionId: record.id, revocation }, "owed revocation settled");
  return { record: updated ?? record, revocation, ...(note ? { note } : {}) };
}

/**
 * A DELETE of a connection already disconnected answers what is true now:
 * a revocation still owed is tried again (and may still be pending), and
 * otherwise the outcome of the first disconnect stands.
 */
async function repeatDisconnect(session: Session, record: ConnectionRecord & { revokedAt?: string }): Promise<DisconnectReport> {
  const revokedAt = record.revokedAt as string;
  if (!record.providerRevokedAt && record.revocation === "pending") {
    const settled = await settleOwedRevocation(session, { ...record, revokedAt });
    return { connection: toPublic(settled.record), revocation: settled.revocation, note: `already disconnected; ${settled.note ?? "the owed revocation is now settled"}` };
  }
  // Connections disconnected before the outcome was recorded: confirmed, or erased without confirmation.
  const revocation: ProviderRevocation = record.providerRevokedAt ? "revoked" : (record.revocation ?? "already_invalid");
  return { connection: toPublic(record), revocation, note: "already disconnected" };
}

