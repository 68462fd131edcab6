/**
 * Reading a request's input with its schema (src/api/requests.ts): the
 * answer to a bad input is one schema error naming each wrong field.
 */
import type { z } from "zod";
import { ErrorCodes, IntegrationError, invalidInput } from "../integrations/shared/errors.js";

/** Parses `value` with `schema`, or throws a schema error naming each wrong field. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, where: "body" | "query" | "params"): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5);
  const describe = (issue: z.core.$ZodIssue): string => {
    const path = issue.path.map(String).join(".");
    if (issue.code === "unrecognized_keys") return `${where} has ${unknownFields(issue.keys)}`;
    if (issue.code === "invalid_type" && path === "") return `${where} must be a JSON object`;
    return `${path || where}: ${issue.message}`;
  };
  const first = issues[0];
  const field = first?.code === "unrecognized_keys" ? first.keys[0]?.slice(0, MAX_FIELD_NAME) : first?.path.map(String).join(".");
  const message = issues.map(describe).join("; ");
  // An unknown field's message names it already (quoted); any other names its path.
  if (first?.code === "unrecognized_keys") throw new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: field || where, message });
  throw invalidInput(field || where, message);
}

/**
 * Unknown fields named in an error: a few, and how many more. A body of
 * 60,000 made-up fields gets a short answer, not its names echoed back.
 */
const MAX_LISTED_FIELDS = 5;
/** Longest part of an unknown field's name quoted back: ours are short, a longer one is no typo. */
const MAX_FIELD_NAME = 64;

function unknownFields(keys: readonly string[]): string {
  const listed = keys.slice(0, MAX_LISTED_FIELDS).map((k) => JSON.stringify(k.slice(0, MAX_FIELD_NAME)));
  const more = keys.length - listed.length;
  const names = more > 0 ? `${listed.join(", ")} and ${more} more` : listed.join(", ");
  return `unknown field${keys.length === 1 ? "" : "s"} ${names}`;
}
