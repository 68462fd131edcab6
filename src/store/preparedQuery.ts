/**
 * A query Kysely builds and compiles once, then runs with each call's
 * values. Building and compiling a query costs more than SQLite takes to
 * answer it on the paths every request takes (listing a user's
 * connections, reading a token, recording health), and the SQL of those is
 * the same every time: only its values change.
 *
 * The query is built with a mark in place of each named value; the marks
 * are found among the compiled parameters, and each call puts its values in
 * their places. Values that are not marked (a constant in the query) stay as
 * built.
 *
 * It runs through the database's plugins: each transforms the query once,
 * as it is compiled (so a plugin that rewrites a query per call, or counts
 * the calls it sees, sees one), and every result.
 */
import type { Compilable, CompiledQuery, Kysely } from "kysely";

const MARK = "\u0000autoflow-param:";

type Slot<P extends string> = { name: P } | { fixed: unknown };

/**
 * Runs the query with `values`, on `db` (a transaction of the same database) when given; `sql()` is its
 * SQL text, and `valuesOf` names the values in a run's parameters (as the database is handed them).
 */
export type PreparedQuery<P extends string, R> = ((values: Readonly<Record<P, unknown>>, db?: Kysely<never>) => Promise<R[]>) & {
  sql(): string;
  valuesOf(parameters: readonly unknown[]): Record<P, unknown>;
};

export function preparedQuery<DB, P extends string, R>(db: Kysely<DB>, names: readonly P[], build: (param: (name: P) => string) => Compilable<R>): PreparedQuery<P, R> {
  let compiled: { query: CompiledQuery<R>; slots: Slot<P>[] } | undefined;
  const compile = (): { query: CompiledQuery<R>; slots: Slot<P>[] } => {
    const query = build((name) => `${MARK}${name}`).compile();
    const slots = query.parameters.map((value): Slot<P> => (typeof value === "string" && value.startsWith(MARK) ? { name: value.slice(MARK.length) as P } : { fixed: value }));
    const marked = new Set(slots.flatMap((slot) => ("name" in slot ? [slot.name] : [])));
    const unused = names.filter((name) => !marked.has(name));
    if (unused.length > 0 || marked.size !== names.length) {
      throw new Error(`prepared query ${JSON.stringify(query.sql.slice(0, 80))}: ${unused.length > 0 ? `${unused.join(", ")} not used` : "a value it uses is not named"}`);
    }
    return { query, slots };
  };
  const run = async (values: Readonly<Record<P, unknown>>, on?: Kysely<never>): Promise<R[]> => {
    compiled ??= compile();
    const parameters = compiled.slots.map((slot) => ("name" in slot ? values[slot.name] : slot.fixed));
    return (await (on ?? db).executeQuery<R>({ ...compiled.query, parameters })).rows;
  };
  const valuesOf = (parameters: readonly unknown[]): Record<P, unknown> => {
    const { slots } = (compiled ??= compile());
    if (parameters.length !== slots.length) throw new Error(`prepared query ${JSON.stringify(compiled.query.sql.slice(0, 80))}: ${parameters.length} parameters, not ${slots.length}`);
    return Object.fromEntries(slots.flatMap((slot, i) => ("name" in slot ? [[slot.name, parameters[i]]] : []))) as Record<P, unknown>;
  };
  return Object.assign(run, { sql: () => (compiled ??= compile()).query.sql, valuesOf });
}
