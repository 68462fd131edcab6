/** Instances starting together on one PostgreSQL schema: every one opens it, whichever creates it. */
import { describe, expect, it } from "vitest";
import { dropSchema, newSchemaName, postgresUrl, testDatabases } from "../testing/databases.js";
import { openPostgres } from "./postgres.js";

describe.runIf(testDatabases().includes("postgres"))("PostgreSQL store opening", () => {
  it("opens a new schema from eight instances at once (a concurrent create schema loses, and is no failure)", async () => {
    const schema = newSchemaName();
    try {
      const opened = await Promise.allSettled(Array.from({ length: 8 }, () => openPostgres({ url: postgresUrl(), schema, maxConnections: 2 })));
      const failures = opened.filter((o) => o.status === "rejected").map((o) => String((o as PromiseRejectedResult).reason));
      for (const o of opened) if (o.status === "fulfilled") await o.value.destroy();
      expect(failures).toEqual([]);
    } finally {
      await dropSchema(schema);
    }
  });
});
