/**
 * The HubSpot sandbox's CRM search (`POST /crm/v3/objects/contacts/search`):
 * reading the request as HubSpot validates it, and matching, sorting and
 * paging the contacts. The route itself lives in `sandbox.ts`.
 *
 * Wire facts (HubSpot's "CRM search" guide and changelogs, as of 2026):
 *   - Filters in a group are ANDed, groups are ORed; since 2024-08-26 at most
 *     5 groups, 10 filters a group, 25 filters in all.
 *   - `limit` defaults to 10 and is at most 200 (raised from 100 in 2024-09);
 *     paging never goes past the 10,000th result (a 400 beyond it).
 *   - `paging.next.after` of a search is the offset of the next page, a
 *     numeric string, not the base64 id the objects list answers.
 *   - `query` looks through the default searchable properties (for
 *     contacts: firstname, lastname, email, phone, hs_additional_emails, fax,
 *     mobilephone, company, hs_marketable_until_renewal).
 *   - Without `sorts`, results come oldest first (by hs_object_id); one sort
 *     rule is applied.
 *   - Refusals are 400 `VALIDATION_ERROR`s whose message is the Java
 *     deserializer's ("Invalid input JSON on line 1, column N: ..."), as
 *     HubSpot's own issue trackers show (hubspot-api-nodejs #226 and #128).
 *     The column the sandbox gives is the whole body's length, not the
 *     offending character's.
 * Uncertain, and the sandbox's choice: the wording of the refusals for too
 * many filters, a limit out of range, a page past 10,000 and an unknown
 * property (all VALIDATION_ERRORs); text compared without regard to case
 * (HubSpot keeps addresses in lower case; other text is reported to compare
 * that way too); the tokenizing of CONTAINS_TOKEN and `query`.
 */

/** HubSpot's search operators (the SDK's FilterOperatorEnum). */
export const SEARCH_OPERATORS = ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"] as const;
export type SearchOperator = (typeof SEARCH_OPERATORS)[number];

const MAX_GROUPS = 5;
const MAX_FILTERS_PER_GROUP = 10;
const MAX_FILTERS = 25;
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 200;
/** No page starts at or past this many results. */
export const MAX_SEARCH_RESULTS = 10_000;
/** Where a contacts search with `query` looks. */
const SEARCHABLE = ["firstname", "lastname", "email", "phone", "hs_additional_emails", "fax", "mobilephone", "company", "hs_marketable_until_renewal"];
/** Properties whose values are instants: filters give them as epoch milliseconds or ISO 8601. */
const DATETIME_PROPERTIES = new Set(["createdate", "lastmodifieddate", "date_of_birth"]);

export type SearchFilter = { propertyName: string; operator: SearchOperator; value?: string; highValue?: string; values?: string[] };
export type SearchSort = { propertyName: string; direction: "ASCENDING" | "DESCENDING" };
export type SearchRequest = { filterGroups: SearchFilter[][]; query?: string; properties?: string[]; limit: number; after: number; sort?: SearchSort };
/** A search HubSpot refuses: the message of its 400 VALIDATION_ERROR. */
export type SearchRefusal = { refused: string };

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
/** Scalars as HubSpot's deserializer takes them for a string field (numbers and booleans coerced). */
const asText = (value: unknown): string | undefined => (typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : undefined);

/**
 * Reads a search body as HubSpot does; `known` says which property names
 * the portal has (a filter or sort on any other is refused).
 */
export function parseSearch(body: unknown, bodyLength: number, known: (name: string) => boolean): SearchRequest | SearchRefusal {
  const invalidJson = (problem: string): SearchRefusal => ({ refused: `Invalid input JSON on line 1, column ${Math.max(1, bodyLength)}: ${problem}` });
  // An empty body is a search with every default (the guide's "include only an empty object").
  const input = body === undefined || body === null ? {} : body;
  if (!isRecord(input)) return invalidJson("Cannot deserialize value of type `PublicObjectSearchRequest` from non-object value");

  const groups: SearchFilter[][] = [];
  const rawGroups = input.filterGroups ?? [];
  if (!Array.isArray(rawGroups)) return invalidJson("Cannot deserialize value of type `java.util.ArrayList<FilterGroup>` from Object value");
  let total = 0;
  for (const rawGroup of rawGroups) {
    if (!isRecord(rawGroup) || !Array.isArray(rawGroup.filters)) return invalidJson("Cannot build FilterGroup, some of required attributes are not set [filters]");
    const filters: SearchFilter[] = [];
    for (const raw of rawGroup.filters) {
      const filter = parseFilter(raw, invalidJson, known);
      if ("refused" in filter) return filter;
      filters.push(filter);
    }
    if (filters.length > MAX_FILTERS_PER_GROUP) return { refused: `Too many filters in a filter group: ${filters.length}; a filter group may have up to ${MAX_FILTERS_PER_GROUP} filters.` };
    total += filters.length;
    groups.push(filters);
  }
  if (groups.length > MAX_GROUPS) return { refused: `Too many filter groups: ${groups.length}; a search may have up to ${MAX_GROUPS} filter groups.` };
  if (total > MAX_FILTERS) return { refused: `Too many filters: ${total}; a search may have up to ${MAX_FILTERS} filters across all filter groups.` };

  let limit = DEFAULT_LIMIT;
  if (input.limit !== undefined && input.limit !== null) {
    const n = Number(input.limit);
    if (!Number.isInteger(n)) return invalidJson(`Cannot deserialize value of type \`int\` from String "${String(input.limit)}": not a valid \`int\` value`);
    if (n < 1 || n > MAX_LIMIT) return { refused: `limit must be between 1 and ${MAX_LIMIT}, was ${n}` };
    limit = n;
  }
  let after = 0;
  if (input.after !== undefined && input.after !== null && input.after !== "") {
    const text = asText(input.after) ?? "";
    if (!/^\d+$/.test(text)) return { refused: `after must be a non-negative integer offset, was ${JSON.stringify(input.after)}` };
    after = Number(text);
    // The guide: "Attempting to page beyond 10,000 will result in a 400 error."
    if (after >= MAX_SEARCH_RESULTS) return { refused: `Search results are limited to ${MAX_SEARCH_RESULTS} records; after ${after} is beyond them.` };
  }

  let properties: string[] | undefined;
  if (input.properties !== undefined && input.properties !== null) {
    if (!Array.isArray(input.properties)) return invalidJson("Cannot deserialize value of type `java.util.ArrayList<java.lang.String>` from String value");
    properties = input.properties.map((p) => asText(p) ?? "").filter((p) => p !== "");
  }

  let sort: SearchSort | undefined;
  if (input.sorts !== undefined && input.sorts !== null) {
    if (!Array.isArray(input.sorts)) return invalidJson("Cannot deserialize value of type `java.util.ArrayList` from Object value");
    const first = input.sorts[0];
    if (first !== undefined) {
      const parsed = parseSort(first);
      if (!parsed) return invalidJson("Cannot build PublicSort, some of required attributes are not set [propertyName]");
      if (!known(parsed.propertyName)) return { refused: `There was a problem with the request: property ${parsed.propertyName} does not exist` };
      sort = parsed;
    }
  }

  const query = asText(input.query);
  return { filterGroups: groups, ...(query !== undefined && query.trim() !== "" ? { query } : {}), ...(properties && properties.length > 0 ? { properties } : {}), limit, after, ...(sort ? { sort } : {}) };
}

function parseFilter(raw: unknown, invalidJson: (problem: string) => SearchRefusal, known: (name: string) => boolean): SearchFilter | SearchRefusal {
  if (!isRecord(raw)) return invalidJson("Cannot build Filter, some of required attributes are not set [propertyName, operator]");
  const missing = ["propertyName", "operator"].filter((name) => raw[name] === undefined || raw[name] === null);
  if (missing.length > 0) return invalidJson(`Cannot build Filter, some of required attributes are not set [${missing.join(", ")}]`);
  const operator = asText(raw.operator) ?? "";
  if (!(SEARCH_OPERATORS as readonly string[]).includes(operator)) {
    return invalidJson(`Cannot deserialize value of type \`com.hubspot.inbounddb.publicobject.core.v3.search.FilterOperator\` from String "${operator}": not one of the values accepted for Enum class: [${SEARCH_OPERATORS.join(", ")}]`);
  }
  const propertyName = asText(raw.propertyName) ?? "";
  if (!known(propertyName)) return { refused: `There was a problem with the request: property ${propertyName} does not exist` };
  const filter: SearchFilter = { propertyName, operator: operator as SearchOperator };
  const value = asText(raw.value);
  const highValue = asText(raw.highValue);
  if (value !== undefined) filter.value = value;
  if (highValue !== undefined) filter.highValue = highValue;
  if (Array.isArray(raw.values)) filter.values = raw.values.map((v) => asText(v) ?? "");
  const problem = (text: string): SearchRefusal => invalidJson(`Cannot construct instance of \`com.hubspot.inbounddb.publicobject.core.v3.search.Filter\`, problem: ${text}`);
  switch (filter.operator) {
    case "HAS_PROPERTY":
    case "NOT_HAS_PROPERTY":
      return filter;
    case "BETWEEN":
      if (filter.value === undefined) return problem("operator BETWEEN requires a value");
      if (filter.highValue === undefined) return problem("operator BETWEEN requires a highValue");
      return filter;
    case "IN":
    case "NOT_IN":
      if (!filter.values || filter.values.length === 0) return problem(`operator ${filter.operator} requires values`);
      return filter;
    default:
      if (filter.value === undefined) return problem(`operator ${filter.operator} requires a value`);
      return filter;
  }
}

/**
 * A sort as HubSpot takes it (@hubspot/api-client's README, "sorts"): `{propertyName, direction}`, that object as a
 * JSON string (the SDK types sorts as strings), a bare name (ascending) or `-name` (descending).
 */
function parseSort(raw: unknown): SearchSort | undefined {
  let value: unknown = raw;
  if (typeof raw === "string") {
    try {
      value = raw.trim().startsWith("{") ? JSON.parse(raw) : { propertyName: raw.replace(/^-/, ""), direction: raw.startsWith("-") ? "DESCENDING" : "ASCENDING" };
    } catch {
      return undefined;
    }
  }
  if (!isRecord(value) || typeof value.propertyName !== "string" || value.propertyName === "") return undefined;
  return { propertyName: value.propertyName, direction: value.direction === "DESCENDING" ? "DESCENDING" : "ASCENDING" };
}

/** Milliseconds of an instant given as epoch ms or ISO 8601; NaN otherwise. */
const instant = (text: string): number => (/^-?\d+$/.test(text) ? Number(text) : Date.parse(text));

/** How `actual` compares to `expected` for `property`: as instants, numbers, or case-insensitive text. */
function compare(property: string, actual: string, expected: string): number {
  if (DATETIME_PROPERTIES.has(property)) {
    const a = instant(actual);
    const b = instant(expected);
    if (!Number.isNaN(a) && !Number.isNaN(b)) return a - b;
  }
  const a = Number(actual);
  const b = Number(expected);
  if (actual.trim() !== "" && expected.trim() !== "" && Number.isFinite(a) && Number.isFinite(b)) return a - b;
  return actual.toLowerCase().localeCompare(expected.toLowerCase());
}

/** The words of a value, as HubSpot tokenizes text (an address is split at its punctuation too). */
const tokensOf = (text: string): string[] => text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);

/** CONTAINS_TOKEN: the value as one token of the property, `*` a wildcard ("*@hubspot.com" matches every address there). */
function containsToken(actual: string, token: string): boolean {
  const wanted = token.toLowerCase();
  if (wanted.includes("*")) {
    const pattern = new RegExp(`^${wanted.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "u");
    return pattern.test(actual.toLowerCase()) || tokensOf(actual).some((t) => pattern.test(t));
  }
  const words = tokensOf(wanted);
  const have = tokensOf(actual);
  return actual.toLowerCase() === wanted || (words.length > 0 && words.every((w) => have.includes(w)));
}

function matchesFilter(properties: Readonly<Record<string, string>>, filter: SearchFilter): boolean {
  const actual = properties[filter.propertyName];
  const has = actual !== undefined && actual !== "";
  switch (filter.operator) {
    case "HAS_PROPERTY":
      return has;
    case "NOT_HAS_PROPERTY":
      return !has;
    case "NEQ":
      return !has || compare(filter.propertyName, actual, filter.value ?? "") !== 0;
    case "NOT_IN":
      return !has || !(filter.values ?? []).some((v) => compare(filter.propertyName, actual, v) === 0);
    case "NOT_CONTAINS_TOKEN":
      return !has || !containsToken(actual, filter.value ?? "");
    default:
      break;
  }
  if (!has) return false;
  const cmp = (expected: string): number => compare(filter.propertyName, actual, expected);
  switch (filter.operator) {
    case "EQ":
      return cmp(filter.value ?? "") === 0;
    case "LT":
      return cmp(filter.value ?? "") < 0;
    case "LTE":
      return cmp(filter.value ?? "") <= 0;
    case "GT":
      return cmp(filter.value ?? "") > 0;
    case "GTE":
      return cmp(filter.value ?? "") >= 0;
    case "BETWEEN":
      return cmp(filter.value ?? "") >= 0 && cmp(filter.highValue ?? "") <= 0;
    case "IN":
      return (filter.values ?? []).some((v) => cmp(v) === 0);
    case "CONTAINS_TOKEN":
      return containsToken(actual, filter.value ?? "");
    default:
      return false;
  }
}

/** `query`: every word of it begins a word of one of the searchable properties. */
function matchesQuery(properties: Readonly<Record<string, string>>, query: string): boolean {
  const words = SEARCHABLE.flatMap((name) => {
    const value = properties[name];
    return value ? [value.toLowerCase(), ...tokensOf(value)] : [];
  });
  return tokensOf(query).every((term) => words.some((word) => word.startsWith(term)));
}

/** The matching records in order, and the page asked for with the offset of the next one. */
export function runSearch<T extends { id: string; properties: Readonly<Record<string, string>> }>(records: readonly T[], search: SearchRequest): { total: number; page: T[]; nextAfter?: number } {
  const matching = records.filter(
    (r) =>
      (search.filterGroups.length === 0 || search.filterGroups.some((group) => group.every((f) => matchesFilter(r.properties, f)))) &&
      (search.query === undefined || matchesQuery(r.properties, search.query)),
  );
  const sort = search.sort;
  const ordered = sort
    ? [...matching].sort((a, b) => {
        const x = a.properties[sort.propertyName];
        const y = b.properties[sort.propertyName];
        // Records without the property come last whichever the direction.
        if (x === undefined || y === undefined) return x === y ? Number(a.id) - Number(b.id) : x === undefined ? 1 : -1;
        const order = compare(sort.propertyName, x, y) || Number(a.id) - Number(b.id);
        return sort.direction === "DESCENDING" ? -order : order;
      })
    : [...matching].sort((a, b) => Number(a.id) - Number(b.id));
  const page = ordered.slice(search.after, search.after + search.limit);
  const next = search.after + search.limit;
  return { total: matching.length, page, ...(next < ordered.length && next < MAX_SEARCH_RESULTS ? { nextAfter: next } : {}) };
}
