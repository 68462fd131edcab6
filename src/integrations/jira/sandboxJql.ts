/**
 * The part of JQL the Jira sandbox's enhanced search understands, parsed and
 * refused as Jira does: a 400 ErrorCollection whose message starts
 * "Error in the JQL Query:" and ends with the position, for a syntax error;
 * Jira's field-level sentences for an unknown field, an operator a field does
 * not take, and a project or issue key that does not exist.
 *
 *   clauses   project = KEY | project in (A, B) | project != KEY
 *             key|issuekey = SBX-1 | key in (...) | id = 10000
 *             summary ~ "text" | summary !~ "text" | text ~ "text" (summary and description)
 *             issuetype = Bug | type in (Bug, Task) | labels = x | labels in (...)
 *             status = "In Progress" | status in (...) | assignee = <accountId> | assignee in (...)
 *             updated|created (>=, >, <=, <, =, !=) "2026/12/01 10:00" | "2026-12-01" | "-5d" | "-1w 2d" | "-15m"
 *             joined by AND / OR, NOT, parentheses
 *   ORDER BY  created | updated | key | id | summary, each ASC or DESC (ASC by default)
 *
 * Words are matched as Jira's text search matches them, roughly: every word
 * of the query must start a word of the field, case-insensitive (`*` at a
 * word's end is a prefix wildcard, already what this does).
 *
 * A date literal has minute precision and is read in the searching account's
 * time zone (as Jira reads it), a date without a time as that day's midnight;
 * a local minute that a clock change repeats is read as its earlier instant,
 * one that a change skips as the instant the clocks jumped to.
 */

/** What a clause can read of an issue. */
export type JqlIssue = {
  id: string;
  key: string;
  projectKey: string;
  issueType: string;
  summary: string;
  descriptionText: string;
  labels: string[];
  created: number;
  updated: number;
  status?: string;
  assigneeAccountId?: string;
  reporterAccountId?: string;
};
/**
 * What the site holds, for the checks Jira makes of values (a project that exists, an issue key that exists),
 * and how the searching account reads dates: its time zone (UTC when left out) and the time now (for "-5d").
 */
export type JqlSite = {
  projectKeys: readonly string[];
  issueKeys: readonly string[];
  timeZone?: string;
  nowMs?: number;
  /**
   * The subset a dynamic webhook's jqlFilter may use: issueKey, project, issuetype, status, assignee and reporter
   * with =, !=, IN and NOT IN, no ORDER BY, and issue keys that need not exist yet.
   */
  webhookFilter?: boolean;
};

export type JqlQuery = {
  /** Undefined for a query with no restriction (only ORDER BY, or nothing). */
  where?: (issue: JqlIssue) => boolean;
  /** Sorts in place, by the ORDER BY fields, then by id in the last field's direction. */
  sort(issues: JqlIssue[]): JqlIssue[];
};

/** A JQL query Jira refuses: its ErrorCollection's errorMessages. */
export class JqlError extends Error {
  constructor(readonly messages: string[]) {
    super(messages.join(" "));
  }
}

type Token = { kind: "word" | "string" | "op" | "punct" | "eof"; text: string; at: number };
type Node =
  | { kind: "and"; left: Node; right: Node }
  | { kind: "or"; left: Node; right: Node }
  | { kind: "not"; inner: Node }
  | { kind: "clause"; field: string; op: string; values: string[]; at: number };

const OPERATORS = ["!=", "!~", ">=", "<=", "=", "~", ">", "<"];
const DATE_OPS = ["=", "!=", ">", ">=", "<", "<="] as const;
const RESERVED = new Set(["and", "or", "not", "in", "order", "by", "is", "empty", "null"]);
const VALID_OPERATORS = "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'.";
/** The fields the sandbox knows, by every name JQL takes for them, and the operators each takes. */
const FIELDS: Record<string, { name: string; ops: readonly string[] }> = {
  project: { name: "project", ops: ["=", "!=", "in", "not in"] },
  key: { name: "key", ops: ["=", "!=", "in", "not in"] },
  issuekey: { name: "key", ops: ["=", "!=", "in", "not in"] },
  id: { name: "key", ops: ["=", "!=", "in", "not in"] },
  summary: { name: "summary", ops: ["~", "!~"] },
  text: { name: "text", ops: ["~"] },
  issuetype: { name: "issuetype", ops: ["=", "!=", "in", "not in"] },
  type: { name: "issuetype", ops: ["=", "!=", "in", "not in"] },
  labels: { name: "labels", ops: ["=", "!=", "in", "not in"] },
  status: { name: "status", ops: ["=", "!=", "in", "not in"] },
  assignee: { name: "assignee", ops: ["=", "!=", "in", "not in"] },
  reporter: { name: "reporter", ops: ["=", "!=", "in", "not in"] },
  updated: { name: "updated", ops: DATE_OPS },
  updateddate: { name: "updated", ops: DATE_OPS },
  created: { name: "created", ops: DATE_OPS },
  createddate: { name: "created", ops: DATE_OPS },
};
const SORTABLE: Record<string, (issue: JqlIssue) => number | string> = {
  created: (i) => i.created,
  updated: (i) => i.updated,
  key: (i) => Number(i.id),
  issuekey: (i) => Number(i.id),
  id: (i) => Number(i.id),
  summary: (i) => i.summary.toLowerCase(),
};
const ISSUE_KEY = /^[A-Za-z][A-Za-z0-9_]*-\d+$/;

/** "(line 1, character N)": Jira counts characters from 1. */
const where = (at: number): string => `(line 1, character ${at + 1})`;
const syntax = (message: string, at: number): JqlError => new JqlError([`Error in the JQL Query: ${message} ${where(at)}`]);
const shown = (token: Token): string => (token.kind === "eof" ? "EOF" : token.text);

function tokenize(jql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < jql.length) {
    const c = jql[i] as string;
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let text = "";
      while (j < jql.length && jql[j] !== c) {
        if (jql[j] === "\\" && j + 1 < jql.length) j += 1;
        text += jql[j];
        j += 1;
      }
      if (j >= jql.length) throw syntax(`The quoted string '${text}' has not been completed.`, i);
      tokens.push({ kind: "string", text, at: i });
      i = j + 1;
      continue;
    }
    if (c === "(" || c === ")" || c === ",") {
      tokens.push({ kind: "punct", text: c, at: i });
      i += 1;
      continue;
    }
    const op = OPERATORS.find((o) => jql.startsWith(o, i));
    if (op) {
      tokens.push({ kind: "op", text: op, at: i });
      i += op.length;
      continue;
    }
    let j = i;
    while (j < jql.length && !/[\s"'(),=!~<>]/.test(jql[j] as string)) j += 1;
    if (j === i) throw syntax(`The character '${c}' is a reserved JQL character. You must enclose it in a string or use the escape '\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}' instead.`, i);
    tokens.push({ kind: "word", text: jql.slice(i, j), at: i });
    i = j;
  }
  tokens.push({ kind: "eof", text: "", at: jql.length });
  return tokens;
}

/** Parses `jql` (every check Jira makes of its values against `site` included), or throws JqlError. */
export function parseJql(jql: string, site: JqlSite): JqlQuery {
  const tokens = tokenize(jql);
  let pos = 0;
  const peek = (): Token => tokens[pos] as Token;
  const next = (): Token => tokens[pos++] as Token;
  const isWord = (token: Token, word: string): boolean => token.kind === "word" && token.text.toLowerCase() === word;

  const value = (): string => {
    const token = next();
    if (token.kind === "string" || (token.kind === "word" && !RESERVED.has(token.text.toLowerCase()))) return token.text;
    throw syntax(`Expecting either a value, list or function but got '${shown(token)}'.`, token.at);
  };
  const clause = (): Node => {
    const token = next();
    if (token.kind === "punct" && token.text === "(") {
      const inner = orExpr();
      const close = next();
      if (close.kind !== "punct" || close.text !== ")") throw syntax(`Expecting ')' but got '${shown(close)}'.`, close.at);
      return inner;
    }
    if (isWord(token, "not")) return { kind: "not", inner: clause() };
    if (token.kind !== "word" && token.kind !== "string") throw syntax(`Expecting a field name but got '${shown(token)}'.`, token.at);
    const opToken = next();
    let op: string;
    if (opToken.kind === "op") op = opToken.text;
    else if (isWord(opToken, "in")) op = "in";
    else if (isWord(opToken, "not") && isWord(peek(), "in")) {
      next();
      op = "not in";
    } else throw syntax(`Expecting operator but got '${shown(opToken)}'. ${VALID_OPERATORS}`, opToken.at);
    let values: string[];
    if (op === "in" || op === "not in") {
      const open = next();
      if (open.kind !== "punct" || open.text !== "(") throw syntax(`Expecting '(' but got '${shown(open)}'.`, open.at);
      values = [value()];
      while (peek().kind === "punct" && peek().text === ",") {
        next();
        values.push(value());
      }
      const close = next();
      if (close.kind !== "punct" || close.text !== ")") throw syntax(`Expecting ')' but got '${shown(close)}'.`, close.at);
    } else values = [value()];
    return { kind: "clause", field: token.text, op, values, at: token.at };
  };
  const andExpr = (): Node => {
    let left = clause();
    while (isWord(peek(), "and")) {
      next();
      left = { kind: "and", left, right: clause() };
    }
    return left;
  };
  const orExpr = (): Node => {
    let left = andExpr();
    while (isWord(peek(), "or")) {
      next();
      left = { kind: "or", left, right: andExpr() };
    }
    return left;
  };

  let tree: Node | undefined;
  if (peek().kind !== "eof" && !isWord(peek(), "order")) tree = orExpr();
  const order: { field: string; desc: boolean }[] = [];
  if (isWord(peek(), "order")) {
    next();
    const by = next();
    if (!isWord(by, "by")) throw syntax(`Expecting 'by' but got '${shown(by)}'.`, by.at);
    for (;;) {
      const field = next();
      if (field.kind !== "word" && field.kind !== "string") throw syntax(`Expecting a field name at the end of the query but got '${shown(field)}'.`, field.at);
      let desc = false;
      if (isWord(peek(), "desc") || isWord(peek(), "asc")) desc = next().text.toLowerCase() === "desc";
      order.push({ field: field.text, desc });
      if (!(peek().kind === "punct" && peek().text === ",")) break;
      next();
    }
  }
  const end = peek();
  if (end.kind !== "eof") throw syntax(`Expecting either 'OR' or 'AND' but got '${shown(end)}'.`, end.at);

  // Jira checks every field and value before it searches; all its complaints come in one answer.
  const problems: string[] = [];
  const zone = site.timeZone ?? "UTC";
  const nowMs = site.nowMs ?? Date.now();
  const WEBHOOK_FIELDS = new Set(["key", "project", "issuetype", "status", "assignee", "reporter"]);
  const check = (node: Node): void => {
    if (node.kind === "not") return check(node.inner);
    if (node.kind !== "clause") {
      check(node.left);
      check(node.right);
      return;
    }
    const field = FIELDS[node.field.toLowerCase()];
    if (!field) {
      problems.push(`Field '${node.field}' does not exist or you do not have permission to view it.`);
      return;
    }
    if (site.webhookFilter && (!WEBHOOK_FIELDS.has(field.name) || node.field.toLowerCase() === "id")) {
      problems.push(`The field '${node.field}' is not supported in a webhook's JQL filter.`);
      return;
    }
    if (!field.ops.includes(node.op)) {
      problems.push(`The operator '${node.op.toUpperCase()}' is not supported by the '${node.field}' field.`);
      return;
    }
    if (field.name === "project") {
      for (const v of node.values) if (!site.projectKeys.some((k) => k.toLowerCase() === v.toLowerCase())) problems.push(`The value '${v}' does not exist for the field '${node.field}'.`);
    }
    if (field.name === "updated" || field.name === "created") {
      for (const v of node.values) {
        if (dateOf(v, zone, nowMs) === undefined) {
          problems.push(`Date value '${v}' for field '${node.field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.`);
        }
      }
    }
    if (field.name === "key" && node.field.toLowerCase() !== "id") {
      for (const v of node.values) {
        if (!ISSUE_KEY.test(v) && !/^\d+$/.test(v)) problems.push(`The issue key '${v}' for field '${node.field}' is invalid.`);
        else if (!site.webhookFilter && ISSUE_KEY.test(v) && !site.issueKeys.some((k) => k.toLowerCase() === v.toLowerCase())) problems.push(`An issue with key '${v}' does not exist for field '${node.field}'.`);
      }
    }
  };
  if (tree) check(tree);
  if (site.webhookFilter && order.length > 0) problems.push("ORDER BY is not supported in a webhook's JQL filter.");
  for (const o of order) if (!SORTABLE[o.field.toLowerCase()]) problems.push(`Not able to sort using field '${o.field}'.`);
  if (problems.length > 0) throw new JqlError(problems);

  // A date literal is read once a query, not once an issue (a search may run through thousands).
  const bounds = new Map<string, number>();
  const boundOf = (text: string): number => {
    let bound = bounds.get(text);
    if (bound === undefined) {
      bound = dateOf(text, zone, nowMs) as number;
      bounds.set(text, bound);
    }
    return bound;
  };
  const wordsOf = (text: string): string[] => text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const matchesText = (haystack: string, needle: string): boolean => {
    const words = wordsOf(haystack);
    return wordsOf(needle.replace(/\*/g, "")).every((w) => words.some((h) => h.startsWith(w)));
  };
  const test = (node: Node, issue: JqlIssue): boolean => {
    if (node.kind === "and") return test(node.left, issue) && test(node.right, issue);
    if (node.kind === "or") return test(node.left, issue) || test(node.right, issue);
    if (node.kind === "not") return !test(node.inner, issue);
    const field = FIELDS[node.field.toLowerCase()] as { name: string };
    const lower = node.values.map((v) => v.toLowerCase());
    const equal = (candidates: string[]): boolean => candidates.some((c) => lower.includes(c.toLowerCase()));
    const positive = !(node.op === "!=" || node.op === "not in" || node.op === "!~");
    switch (field.name) {
      case "project":
        return equal([issue.projectKey]) === positive;
      case "key":
        return equal([issue.key, issue.id]) === positive;
      case "issuetype":
        return equal([issue.issueType]) === positive;
      case "labels":
        return equal(issue.labels) === positive;
      case "status":
        return equal(issue.status !== undefined ? [issue.status] : []) === positive;
      case "assignee":
        return equal(issue.assigneeAccountId !== undefined ? [issue.assigneeAccountId] : []) === positive;
      case "reporter":
        return equal(issue.reporterAccountId !== undefined ? [issue.reporterAccountId] : []) === positive;
      case "updated":
      case "created": {
        const at = field.name === "updated" ? issue.updated : issue.created;
        const bound = boundOf(node.values[0] as string);
        switch (node.op) {
          case ">=":
            return at >= bound;
          case ">":
            return at > bound;
          case "<=":
            return at <= bound;
          case "<":
            return at < bound;
          case "!=":
            return at !== bound;
          default:
            return at === bound;
        }
      }
      case "summary":
        return matchesText(issue.summary, node.values[0] as string) === positive;
      default:
        return matchesText(`${issue.summary} ${issue.descriptionText}`, node.values[0] as string);
    }
  };
  const restriction = tree;
  return {
    ...(restriction ? { where: (issue: JqlIssue) => test(restriction, issue) } : {}),
    sort(issues) {
      // [UNCERTAIN] Jira's order without ORDER BY; newest first is what its issue navigator shows.
      const keys = order.length > 0 ? order : [{ field: "created", desc: true }];
      const last = keys[keys.length - 1] as { desc: boolean };
      return issues.sort((a, b) => {
        for (const k of keys) {
          const read = SORTABLE[k.field.toLowerCase()] as (issue: JqlIssue) => number | string;
          const [x, y] = [read(a), read(b)];
          if (x !== y) return (x < y ? -1 : 1) * (k.desc ? -1 : 1);
        }
        return (Number(a.id) - Number(b.id)) * (last.desc ? -1 : 1);
      });
    },
  };
}

const PERIOD_UNITS: Record<string, number> = { w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000, m: 60_000 };
const DATE_LITERAL = /^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?: (\d{1,2}):(\d{2}))?$/;

/** A date value of JQL in epoch ms, read in `zone` at minute precision; undefined when Jira would refuse it. */
function dateOf(value: string, zone: string, nowMs: number): number | undefined {
  const trimmed = value.trim();
  const period = /^([-+]?)((?:\d+[wdhm]\s*)+)$/.exec(trimmed);
  if (period) {
    let ms = 0;
    for (const part of period[2]!.matchAll(/(\d+)([wdhm])/g)) ms += Number(part[1]) * (PERIOD_UNITS[part[2]!] as number);
    return Math.floor((nowMs + (period[1] === "-" ? -ms : ms)) / 60_000) * 60_000;
  }
  const match = DATE_LITERAL.exec(trimmed);
  if (!match) return undefined;
  const [year, month, day, hour, minute] = [match[1], match[2], match[3], match[4] ?? "0", match[5] ?? "0"].map(Number) as [number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59) return undefined;
  return zonedMinute(year, month, day, hour, minute, zone);
}

const wallFormats = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock fields of an instant in `zone`, as the epoch ms of the same fields in UTC. */
function wallOf(atMs: number, zone: string): number {
  const parts: Record<string, number> = {};
  let format = wallFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" });
    wallFormats.set(zone, format);
  }
  for (const p of format.formatToParts(new Date(atMs))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!);
}

/** The instant a local minute names in `zone`: the earlier of two in a repeated hour, the jump's end in a skipped one. */
function zonedMinute(year: number, month: number, day: number, hour: number, minute: number, zone: string): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  // Offsets lie within -12h..+14h; try each quarter hour and keep the instants whose wall clock is this one.
  let earliest: number | undefined;
  for (let offset = -14 * 60; offset <= 14 * 60; offset += 15) {
    const candidate = wall - offset * 60_000;
    if (wallOf(candidate, zone) === wall && (earliest === undefined || candidate < earliest)) earliest = candidate;
  }
  if (earliest !== undefined) return earliest;
  // A skipped minute: the first instant whose wall clock is past it.
  let t = wall - 14 * 3_600_000;
  while (wallOf(t, zone) < wall) t += 15 * 60_000;
  return t;
}
