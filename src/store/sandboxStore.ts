/**
 * The sandboxes' storage (the kit's `SandboxStateStore`) in the service's own
 * database, so that SQLite keeps it in the data folder and PostgreSQL shares
 * it between instances. One row a provider: the app registration, where its
 * server last listened, and the state snapshot that server wrote.
 */
import type { Kysely } from "kysely";
import type { SandboxApp, SandboxRegistration, SandboxStateStore } from "../sandbox/kit.js";
import type { Database } from "./schema.js";

export class SqlSandboxStore implements SandboxStateStore {
  constructor(private readonly db: Kysely<Database>) {}

  async register(provider: string, proposed: SandboxApp, redirectUris: readonly string[]): Promise<SandboxRegistration> {
    const now = new Date().toISOString();
    // First writer wins: two instances starting together agree on one app.
    await this.db
      .insertInto("sandbox_states")
      .values({ provider, client_id: proposed.clientId, client_secret: proposed.clientSecret, url: null, owner: null, state: null, updated_at: now })
      .onConflict((oc) => oc.column("provider").doNothing())
      .execute();
    for (const uri of redirectUris) {
      await this.db
        .insertInto("sandbox_redirect_uris")
        .values({ provider, uri, registered_at: now })
        .onConflict((oc) => oc.columns(["provider", "uri"]).doNothing())
        .execute();
    }
    const registration = await this.registration(provider);
    if (!registration) throw new Error(`the ${provider} sandbox's registration vanished while it was made`);
    return registration;
  }

  async registration(provider: string): Promise<SandboxRegistration | undefined> {
    const row = await this.db.selectFrom("sandbox_states").select(["client_id", "client_secret", "url"]).where("provider", "=", provider).executeTakeFirst();
    if (!row) return undefined;
    const uris = await this.db
      .selectFrom("sandbox_redirect_uris")
      .select("uri")
      .where("provider", "=", provider)
      .orderBy("registered_at")
      .orderBy("uri")
      .execute();
    return { clientId: row.client_id, clientSecret: row.client_secret, redirectUris: uris.map((u) => u.uri), ...(row.url ? { url: row.url } : {}) };
  }

  async loadState(provider: string): Promise<string | undefined> {
    const row = await this.db.selectFrom("sandbox_states").select("state").where("provider", "=", provider).executeTakeFirst();
    return row?.state ?? undefined;
  }

  async claim(provider: string, owner: string, url: string): Promise<void> {
    await this.db.updateTable("sandbox_states").set({ owner, url, updated_at: new Date().toISOString() }).where("provider", "=", provider).execute();
  }

  async saveState(provider: string, owner: string, state: string): Promise<boolean> {
    // Compare-and-set on the owner: a process that lost its claim cannot write over its successor's state.
    const result = await this.db
      .updateTable("sandbox_states")
      .set({ state, updated_at: new Date().toISOString() })
      .where("provider", "=", provider)
      .where("owner", "=", owner)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }
}
