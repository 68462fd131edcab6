/**
 * A sandbox store in memory, for tests that restart a sandbox on the same
 * persistence: what the service's SQL store does (registration, claim,
 * fenced snapshots), without a database.
 */
import type { SandboxApp, SandboxRegistration, SandboxStateStore } from "../sandbox/kit.js";

export class MemorySandboxStore implements SandboxStateStore {
  readonly rows = new Map<string, SandboxRegistration & { state?: string; owner?: string }>();

  async register(provider: string, proposed: SandboxApp, redirectUris: readonly string[]): Promise<SandboxRegistration> {
    const row = this.rows.get(provider) ?? { ...proposed, redirectUris: [] };
    for (const uri of redirectUris) if (!row.redirectUris.includes(uri)) row.redirectUris.push(uri);
    this.rows.set(provider, row);
    return { clientId: row.clientId, clientSecret: row.clientSecret, redirectUris: [...row.redirectUris], ...(row.url ? { url: row.url } : {}) };
  }

  async registration(provider: string): Promise<SandboxRegistration | undefined> {
    const row = this.rows.get(provider);
    return row ? { clientId: row.clientId, clientSecret: row.clientSecret, redirectUris: [...row.redirectUris], ...(row.url ? { url: row.url } : {}) } : undefined;
  }

  async loadState(provider: string): Promise<string | undefined> {
    return this.rows.get(provider)?.state;
  }

  async claim(provider: string, owner: string, url: string): Promise<void> {
    const row = this.rows.get(provider);
    if (row) Object.assign(row, { owner, url });
  }

  async saveState(provider: string, owner: string, state: string): Promise<boolean> {
    const row = this.rows.get(provider);
    if (!row || row.owner !== owner) return false;
    row.state = state;
    return true;
  }
}
