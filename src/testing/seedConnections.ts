/**
 * Many connections at once, shaped as a vault in production holds them, for
 * the planners to plan against (scanIndexes.test.ts) and for the vault
 * benchmark's 1,000 and 1,000,000 rows: one statement that the database runs
 * itself, where a million vault writes would take an hour.
 *
 * Of every 100 rows: 2 disconnected (their provider revocation done), 5 whose
 * refresh failed (status failed, left with their past expiry), 10 without a
 * refresh token or an expiry (API keys); the rest healthy, expiring in a year.
 * None is due for refresh and none owes a revocation: the rows a figure or a
 * test reads are written through the vault beside them. Four connections per
 * user, the eight providers in turn. The tokens are copies of a real row's
 * ciphertext (opening them fails, as they are bound to that row); nothing
 * here reads them.
 */
import { sql, type Kysely } from "kysely";
import type { Database, StoreDialect } from "../store/schema.js";

export type SeedTemplate = { dataKeyWrapped: string; accessTokenEnc: string; refreshTokenEnc: string };

const PROVIDERS = ["slack", "hubspot", "stripe", "gmail", "linear", "sentry", "teams", "jira"];

export async function seedConnections(db: Kysely<Database>, dialect: StoreDialect, input: { count: number; prefix: string; template: SeedTemplate; now: Date }): Promise<void> {
  if (!Number.isSafeInteger(input.count) || input.count < 1) throw new RangeError(`seedConnections: count must be a positive integer, not ${input.count}`);
  if (!/^[a-z0-9_]+$/.test(input.prefix)) throw new RangeError(`seedConnections: prefix must be lowercase letters, digits and _, not ${JSON.stringify(input.prefix)}`);
  const past = new Date(input.now.getTime() - 30 * 86_400_000).toISOString();
  const later = new Date(input.now.getTime() + 365 * 86_400_000).toISOString();
  const i = sql.ref("n.i");
  const kind = sql`(${i} % 100)`;
  const revoked = sql`${kind} < 2`;
  const failed = sql`${kind} >= 2 and ${kind} < 7`;
  const keyed = sql`${kind} >= 7 and ${kind} < 17`;
  const providers = sql.join(PROVIDERS.map((p, k) => sql`when ${sql.lit(k)} then ${sql.lit(p)}`), sql` `);
  // A random id, as the vault's are, so that id order is not insertion order.
  const id = dialect === "sqlite" ? sql`lower(hex(randomblob(16)))` : sql`md5(random()::text || ${i}::text)`;
  const numbers = dialect === "sqlite"
    ? sql`(with recursive s(i) as (select 0 union all select i + 1 from s where i < ${sql.lit(input.count - 1)}) select i from s) as n`
    : sql`generate_series(0, ${sql.lit(input.count - 1)}) as n(i)`;
  await sql`
    insert into connections (id, user_id, provider, auth_method, token_masked, scopes, metadata, data_key_wrapped, access_token_enc,
      refresh_token_enc, access_token_expires_at, access_token_issued_at, token_refresh_status, last_health, version, created_at,
      updated_at, revoked_at, provider_revoked_at, base_url, provider_revocation)
    select
      ${sql.lit(`conn_${input.prefix}`)} || ${id},
      ${sql.lit(`${input.prefix}_user_`)} || cast(${i} / 4 as text),
      case ${i} % 8 ${providers} end,
      case when ${keyed} then 'api_key' else 'oauth2' end,
      'tok_****',
      '[]',
      '{}',
      case when ${revoked} then null else ${input.template.dataKeyWrapped} end,
      case when ${revoked} then null else ${input.template.accessTokenEnc} end,
      case when ${revoked} or ${keyed} then null else ${input.template.refreshTokenEnc} end,
      case when ${keyed} then null when ${failed} then ${past} else ${later} end,
      case when ${keyed} then null else ${past} end,
      case when ${failed} then 'failed' when ${keyed} then 'not_applicable' else 'healthy' end,
      null,
      1,
      ${past},
      ${past},
      case when ${revoked} then ${past} else null end,
      case when ${revoked} then ${past} else null end,
      null,
      case when ${revoked} then 'revoked' else null end
    from ${numbers}`.execute(db);
  // What autovacuum does soon after a bulk load: the planner's statistics.
  await sql`analyze`.execute(db);
}
