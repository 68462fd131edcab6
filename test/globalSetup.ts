/**
 * Before any test file: is there a PostgreSQL to run the PostgreSQL half of
 * the suite against? CI says there must be (AUTOFLOW_TEST_REQUIRE_POSTGRES=1)
 * and fails without one; elsewhere, no server means SQLite only, said aloud.
 * Each run gets its own schema prefix, and its schemas are dropped at the end.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { TestProject } from "vitest/node";

export const DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";

declare module "vitest" {
  export interface ProvidedContext {
    /** The PostgreSQL to test against, or "" for SQLite only. */
    postgresUrl: string;
    /** Prefix of this run's schemas. */
    schemaPrefix: string;
  }
}

async function reachable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query("select 1");
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.AUTOFLOW_TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;
  const required = process.env.AUTOFLOW_TEST_REQUIRE_POSTGRES === "1";
  const problem = await reachable(url);
  const prefix = `af_${randomBytes(4).toString("hex")}_`;
  if (problem && required) {
    throw new Error(`AUTOFLOW_TEST_REQUIRE_POSTGRES=1 but PostgreSQL at ${url} is not reachable: ${problem}`);
  }
  if (problem) {
    process.stdout.write(`\n[autoflow] PostgreSQL not reachable at ${url} (${problem}): running the suite on SQLite only.\n\n`);
  } else {
    process.stdout.write(`\n[autoflow] running the store and contract suites on SQLite and on PostgreSQL (${url}, schemas ${prefix}*).\n\n`);
  }
  project.provide("postgresUrl", problem ? "" : url);
  project.provide("schemaPrefix", prefix);
  return async () => {
    if (problem) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ nspname: string }>("select nspname from pg_namespace where nspname like $1", [`${prefix}%`]);
      for (const row of rows) await client.query(`drop schema if exists "${row.nspname}" cascade`);
    } finally {
      await client.end();
    }
  };
}
