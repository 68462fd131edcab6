/**
 * The vault at 1,000 and at 1,000,000 connections, on SQLite (a file, as the
 * service keeps it) and on PostgreSQL: the queries whose cost must not grow
 * with the table, each through the vault's own methods (the statements the
 * service sends, rows made into records):
 *
 * - listing a user's connections of a provider (three of them), read from
 *   the database each time (on SQLite over a connection that keeps no rows);
 * - the refresh-ahead scan's page (the 100 connections due, of 200 asked);
 * - a health sweep page, the first and one from the middle of the id order
 *   (200 active connections);
 * - the owed-revocation scan (none owed).
 *
 * The rows are those of seedConnections (production's shape: some
 * disconnected, some whose refresh failed with their expiry long past, some
 * API keys), plus the listed user's and the due ones written through the
 * vault, the same in both stores. Each figure is the median time of one call
 * over 200 calls, call by call alternately on the two stores, the median of
 * three such rounds after a warm-up; the 1,000,000's over the 1,000's. PostgreSQL is skipped, and says
 * so, when none answers (`DATABASE_URL`, or postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { openStore, SqlVault, type OpenedStore } from "../../src/store/index.js";
import { openSqlite } from "../../src/store/sqlite.js";
import { seedConnections } from "../../src/testing/seedConnections.js";
import { figure, median, ROUNDS, type Figure } from "./compare.js";

const SIZES = { small: 1_000, large: 1_000_000 } as const;
type Size = keyof typeof SIZES;
const CALLS = 200;
const DUE = 100;
const NOW = new Date("2026-06-01T00:00:00.000Z");
const minutes = (m: number): string => new Date(NOW.getTime() + m * 60_000).toISOString();
const DUE_FOR_REFRESH = { expiresBefore: minutes(10), issuedBefore: minutes(0) };

type Fixture = { store: OpenedStore; /** A vault on the same database that keeps no rows (on SQLite, over a connection of its own). */ reads: SqlVault; seedMs: number; middleId: string; close(): Promise<void> };

type Opened = { store: OpenedStore; reads: SqlVault; dispose(): Promise<void> };

async function fixture(open: () => Promise<Opened>, count: number): Promise<Fixture> {
  const { store, reads, dispose } = await open();
  const close = async () => {
    await store.close();
    await dispose();
  };
  try {
    const connect = (userId: string, expiresAt: string) =>
      store.vault.createConnection({
        userId,
        provider: "slack",
        authMethod: "oauth2",
        accessToken: `xoxe.xoxp-${randomBytes(20).toString("hex")}`,
        refreshToken: `xoxe-1-${randomBytes(20).toString("hex")}`,
        tokenMasked: "xoxe****",
        scopes: ["chat:write"],
        metadata: { teamId: "T0BENCH" },
        accessTokenExpiresAt: expiresAt,
        accessTokenIssuedAt: minutes(-720),
        tokenRefreshStatus: "healthy",
        createdAt: minutes(-720),
      });
    const template = await store.db
      .selectFrom("connections")
      .select(["data_key_wrapped", "access_token_enc", "refresh_token_enc"])
      .where("id", "=", (await connect("probe", minutes(600))).id)
      .executeTakeFirstOrThrow();
    for (let i = 0; i < 2; i++) await connect("probe", minutes(600));
    for (let i = 0; i < DUE; i++) await connect(`due_${i}`, minutes(i % 10));
    const started = performance.now();
    await seedConnections(store.db, store.dialect, {
      count,
      prefix: "seed",
      template: { dataKeyWrapped: template.data_key_wrapped as string, accessTokenEnc: template.access_token_enc as string, refreshTokenEnc: template.refresh_token_enc as string },
      now: NOW,
    });
    const seedMs = performance.now() - started;
    // A page from the middle of the id order (the seeded ids are random hex).
    return { store, reads, seedMs, middleId: "conn_seed8", close };
  } catch (error) {
    await close();
    throw error;
  }
}

const QUERIES = {
  // Read from the database each time: on SQLite the service's vault answers a repeat from the rows it keeps (ROWS_KEPT), which would measure memory, not the index.
  "listing a user's connections": (f: Fixture) => f.reads.listConnections({ userId: "probe", provider: "slack" }),
  "refresh-ahead scan page": (f: Fixture) => f.store.vault.scanConnections({ limit: 200, dueForRefresh: DUE_FOR_REFRESH }),
  "health sweep page, first": (f: Fixture) => f.store.vault.scanConnections({ limit: 200 }),
  "health sweep page, middle": (f: Fixture) => f.store.vault.scanConnections({ limit: 200, afterId: f.middleId }),
  "owed-revocation scan": (f: Fixture) => f.store.vault.scanConnections({ limit: 200, revocationOwed: true }),
} as const;
const EXPECTED_ROWS: Record<keyof typeof QUERIES, number> = {
  "listing a user's connections": 3,
  "refresh-ahead scan page": DUE,
  "health sweep page, first": 200,
  "health sweep page, middle": 200,
  "owed-revocation scan": 0,
};

/** One round: CALLS calls on each store, alternately (a busy moment of the machine hits both alike); each store's median, in µs. */
async function round(run: (f: Fixture) => Promise<unknown[]>, fixtures: Record<Size, Fixture>, expected: number, label: string): Promise<Record<Size, number>> {
  const times: Record<Size, number[]> = { small: [], large: [] };
  for (let i = 0; i < CALLS; i++) {
    for (const size of ["small", "large"] as const) {
      const started = performance.now();
      const rows = await run(fixtures[size]);
      times[size].push(performance.now() - started);
      if (rows.length !== expected) throw new Error(`${label} at ${SIZES[size].toLocaleString("en")} rows: ${rows.length} rows, not ${expected}`);
    }
  }
  return { small: median(times.small) * 1000, large: median(times.large) * 1000 };
}

async function measure(dialect: "SQLite" | "PostgreSQL", fixtures: Record<Size, Fixture>): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const [name, query] of Object.entries(QUERIES) as [keyof typeof QUERIES, (f: Fixture) => Promise<unknown[]>][]) {
    const label = `${dialect}: ${name}`;
    await round(query, fixtures, EXPECTED_ROWS[name], label); // warm-up
    const rounds: Record<Size, number>[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await round(query, fixtures, EXPECTED_ROWS[name], label));
    const result = Object.fromEntries((["small", "large"] as const).map((size) => [size, { median: median(rounds.map((r) => r[size])), runs: rounds.map((r) => r[size]) }])) as Record<Size, { median: number; runs: number[] }>;
    const line = figure({
      section: "vault",
      name: label,
      value: Number(result.large.median.toFixed(1)),
      unit: "µs",
      baseline: { name: "the same at 1,000 rows", value: Number(result.small.median.toFixed(1)) },
      better: "lower",
      limit: 1.5,
      target: "≤ 1.5x of 1,000 rows",
      note: `at 1,000,000 rows; rounds ${result.large.runs.map((v) => v.toFixed(0)).join("/")} µs vs ${result.small.runs.map((v) => v.toFixed(0)).join("/")}`,
    });
    figures.push(line);
    process.stdout.write(`${line.name.padEnd(52)} ${line.value} µs over ${line.baseline?.value} µs: ${line.ratio}x\n`);
  }
  return figures;
}

async function sqliteFixtures(): Promise<Record<Size, Fixture>> {
  const dir = mkdtempSync(join(tmpdir(), "autoflow-bench-vault-"));
  const keys = [randomBytes(32)];
  const open = (size: Size) => async (): Promise<Opened> => {
    const store = await openStore({ sqlitePath: join(dir, `${size}.db`), keys });
    // The store's own connection keeps the rows its vault reads: the listing is read over another.
    const own = openSqlite(join(dir, `${size}.db`));
    return { store, reads: new SqlVault(own, store.keyring, undefined, { keepRows: false }), dispose: () => own.destroy() };
  };
  const small = await fixture(open("small"), SIZES.small);
  const large = await fixture(open("large"), SIZES.large);
  const closeLarge = large.close;
  large.close = async () => {
    await closeLarge();
    rmSync(dir, { recursive: true, force: true });
  };
  process.stdout.write(`vault: SQLite seeded ${SIZES.large.toLocaleString("en")} rows in ${(large.seedMs / 1000).toFixed(1)} s\n`);
  return { small, large };
}

async function postgresFixtures(url: string): Promise<Record<Size, Fixture>> {
  const keys = [randomBytes(32)];
  const run = randomBytes(4).toString("hex");
  const open = (size: Size) => async () => {
    const schema = `bench_vault_${run}_${size}`;
    const drop = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`).finally(() => client.end());
    };
    const store = await openStore({ postgres: { url, schema }, keys });
    return { store, reads: new SqlVault(store.db, store.keyring, undefined, { keepRows: false }), dispose: drop };
  };
  const small = await fixture(open("small"), SIZES.small);
  const large = await fixture(open("large"), SIZES.large).catch(async (error: unknown) => {
    await small.close();
    throw error;
  });
  process.stdout.write(`vault: PostgreSQL seeded ${SIZES.large.toLocaleString("en")} rows in ${(large.seedMs / 1000).toFixed(1)} s\n`);
  return { small, large };
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function vaultScale(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const sqlite = await sqliteFixtures();
  try {
    figures.push(...(await measure("SQLite", sqlite)));
  } finally {
    await sqlite.small.close();
    await sqlite.large.close();
  }
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  if (!(await postgresAnswers(url))) {
    process.stdout.write(`vault: PostgreSQL skipped, none answers at ${url}\n`);
    return figures;
  }
  const postgres = await postgresFixtures(url);
  try {
    figures.push(...(await measure("PostgreSQL", postgres)));
  } finally {
    await postgres.small.close();
    await postgres.large.close();
  }
  return figures;
}
