/**
 * docs/integrations/contract-v1.md from real exchanges: the service as
 * `npm start` runs it (SQLite in a temporary data folder, every connector on
 * its sandbox, everything on 127.0.0.1, a user token as the `token` command
 * mints it) driven over HTTP, each request and answer recorded, and the
 * values that differ run to run replaced by stable placeholders, so that the
 * document is the same byte for byte on every run and can be checked in and
 * compared (test/e2e/contractDoc.test.ts; `npm run docs:contract` rewrites it).
 *
 * The only thing not as in production: retry waits return at once (the
 * harness's virtual clock), so the upstream and network examples, retried
 * within their budget before they surface, cost no time.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { STATUS_CODES } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SANDBOX_BASE_PORT, loadConfig } from "../config.js";
import { PROVIDER_IDS, RETRY_POLICIES, type ProviderId } from "../integrations/registry.js";
import { createLogger } from "../server/logging.js";
import { startService, type Service } from "../service.js";
import { tokenCommand } from "../tokenCommand.js";
import { VirtualClock } from "./harness.js";

export const CONTRACT_V1_DOC_PATH = "docs/integrations/contract-v1.md";

/** Where the service tells providers to send the browser back (AUTOFLOW_PUBLIC_URL as `npm start` defaults it). */
const PUBLIC_URL = "http://localhost:3000";
/** Every timestamp of the document: one instant, so that the document does not depend on when it was made. */
export const PLACEHOLDER_INSTANT = "2026-01-01T00:00:00.000Z";
const ISO_INSTANT = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z/g;
/** The response headers a caller acts on; the rest (date, content-length, keep-alive, the service's own rate window) are left out. */
const SHOWN_RESPONSE_HEADERS = ["location", "content-type", "cache-control", "retry-after", "www-authenticate", "set-cookie"];

/** A well-formed Stripe secret key no sandbox ever issued: the same on every run, so shown as it is. */
const NEVER_ISSUED_STRIPE_KEY = `sk_test_51${"A".repeat(97)}`;

type Json = Record<string, unknown>;

/** The fault the Stripe sandbox is told to produce before each provider-made error example. */
const ERROR_FAULTS = {
  errorSchemaProvider: { fault: "bad-request" },
  errorUpstream: { fault: "server-error" },
  errorNetwork: { fault: "disconnect" },
  // Longer than Stripe's policy waits, so it is answered at once rather than waited out.
  errorRateLimit: { fault: "rate-limit", retryAfterSeconds: 3600 },
} as const;

/** One request and its answer, as sent and received (before any placeholder). */
export type Exchange = {
  /** "service", or the provider whose sandbox answered. */
  server: "service" | ProviderId;
  request: { method: string; path: string; headers: [string, string][]; body?: unknown };
  response: { status: number; headers: [string, string][]; body: unknown };
  /** For the error examples: how many requests the provider's sandbox received while the service answered. */
  providerCalls?: number;
};

/** The exchanges the document shows, by name (what the test checks the meaning of). */
export type ExchangeName =
  | "slackStart"
  | "slackConsent"
  | "slackComplete"
  | "slackList"
  | "slackTest"
  | "slackHealth"
  | "slackDisconnect"
  | "slackHealthAfter"
  | "stripeThrottle"
  | "stripeThrottledHealth"
  | "stripeDesk"
  | "stripeConnect"
  | "stripeHealth"
  | "errorAuthKey"
  | "errorAuthToken"
  | "errorSchemaField"
  | "errorSchemaProvider"
  | "errorUpstream"
  | "errorNetwork"
  | "errorRateLimit";

export type ContractCapture = {
  exchanges: Record<ExchangeName, Exchange>;
  /** docs/integrations/contract-v1.md as it should be. */
  markdown: string;
};

/**
 * The values that differ run to run, each with the placeholder it is shown
 * as: the same value gets the same placeholder wherever it appears (a state
 * in the start answer, the consent URL, the redirect and the completion), and
 * two values never share one.
 */
class Placeholders {
  /** Each value and the placeholder it asks for. */
  private readonly wanted = new Map<string, string>();
  /** The placeholder each value got, at its first appearance in the document. */
  private readonly given = new Map<string, string>();
  private readonly taken = new Set<string>();

  /** `value` to be shown as `shown` (e.g. `slack_<state>`). */
  add(value: string | undefined, shown: string): void {
    if (value === undefined || value === "" || this.wanted.has(value)) return;
    this.wanted.set(value, shown);
  }

  /** A value with a literal prefix the provider always uses: the prefix kept, the rest a placeholder. */
  addKeepingPrefix(value: string | undefined, prefix: string, name: string): void {
    if (value === undefined) return;
    this.add(value, value.startsWith(prefix) ? `${prefix}<${name}>` : `<${name}>`);
  }

  /**
   * A masked token (`xoxb****JcdH`): its head is the token's literal prefix (`xoxb`, `sk_t`) and
   * stays; its tail is the random end of the token.
   */
  addMasked(value: string | undefined): void {
    const match = value === undefined ? null : /^([^*]*)\*{4}([^*]*)$/.exec(value);
    if (!value || !match) return;
    this.add(value, `${match[1] ?? ""}****<last-4>`);
  }

  /**
   * `text` with every value replaced. A value gets its placeholder where it first appears in the
   * document (so numbering follows the reading order, not the order of capture); a second value
   * asking for a placeholder already given gets `-2`, `-3` inside its last brackets.
   */
  apply(text: string): string {
    const fresh = [...this.wanted.keys()].filter((v) => !this.given.has(v) && text.includes(v)).sort((a, b) => text.indexOf(a) - text.indexOf(b));
    for (const value of fresh) {
      const shown = this.wanted.get(value) as string;
      let candidate = shown;
      for (let n = 2; this.taken.has(candidate); n++) candidate = shown.replace(/>([^>]*)$/, `-${n}>$1`);
      this.taken.add(candidate);
      this.given.set(value, candidate);
    }
    let out = text;
    // Longest first, so that a value containing another is replaced whole.
    for (const [value, shown] of [...this.given].sort((a, b) => b[0].length - a[0].length)) out = out.split(value).join(shown);
    return out.replace(ISO_INSTANT, PLACEHOLDER_INSTANT);
  }

  values(): string[] {
    return [...this.wanted.keys()];
  }
}

/** Runs the service, drives every example, and answers the exchanges and the document. */
export async function captureContract(): Promise<ContractCapture> {
  const dataDir = mkdtempSync(join(tmpdir(), "autoflow-contract-"));
  // The environment `npm start` reads, with a temporary data folder, free ports and no background jobs
  // (a sweep probing connections between two requests would change what they answer).
  const env: NodeJS.ProcessEnv = {
    AUTOFLOW_DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    AUTOFLOW_PUBLIC_URL: PUBLIC_URL,
    AUTOFLOW_SANDBOX_BASE_PORT: "0",
    AUTOFLOW_JOBS: "off",
    AUTOFLOW_LOG_LEVEL: "silent",
  };
  const clock = new VirtualClock();
  let service: Service | undefined;
  try {
    service = await startService(loadConfig(env), { logger: createLogger("silent"), listen: true, clock });
    const session = new Session(service, env, clock);
    const exchanges = await session.run();
    return { exchanges, markdown: renderDocument(exchanges, session.placeholders, service) };
  } finally {
    await service?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Captures and writes the document; answers its path. */
export async function writeContractDoc(root = process.cwd()): Promise<string> {
  const { markdown } = await captureContract();
  writeFileSync(join(root, CONTRACT_V1_DOC_PATH), markdown);
  return CONTRACT_V1_DOC_PATH;
}

class Session {
  readonly placeholders = new Placeholders();
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly service: Service,
    private readonly env: NodeJS.ProcessEnv,
    private readonly clock: VirtualClock,
  ) {}

  async run(): Promise<Record<ExchangeName, Exchange>> {
    const p = this.placeholders;
    const x = {} as Record<ExchangeName, Exchange>;

    // The seed's first example, which is also the first step of Slack's lifecycle.
    x.slackStart = await this.call("alice", "POST", "/api/integrations/slack/oauth/start");
    const start = this.json(x.slackStart, 200);
    this.registerStart("slack", start, x.slackStart);
    x.slackConsent = await this.sandboxGet("slack", String(start.authUrl));
    expectStatus(x.slackConsent, 302);
    const callback = new URL(headerOf(x.slackConsent, "location") ?? "");
    p.add(callback.searchParams.get("code") ?? undefined, "<authorization-code>");
    x.slackComplete = await this.call("alice", "POST", "/api/integrations/slack/oauth/complete", {
      code: callback.searchParams.get("code"),
      state: callback.searchParams.get("state"),
    });
    const slack = this.json(x.slackComplete, 201);
    this.registerConnection("slack", slack);
    x.slackList = await this.call("alice", "GET", "/api/integrations/slack/connections");
    this.json(x.slackList, 200);
    x.slackTest = await this.call("alice", "POST", "/api/integrations/slack/test");
    const tested = this.json(x.slackTest, 200);
    p.add(str(tested.userId), "<slack-user-id>");
    p.add(str(tested.botId), "<slack-bot-id>");
    x.slackHealth = await this.call("alice", "GET", "/api/integrations/slack/health");
    this.json(x.slackHealth, 200);
    x.slackDisconnect = await this.call("alice", "DELETE", `/api/integrations/slack/connections/${String(slack.id)}`);
    this.json(x.slackDisconnect, 200);
    x.slackHealthAfter = await this.call("alice", "GET", "/api/integrations/slack/health");
    this.json(x.slackHealthAfter, 200);

    // The seed's second example: Stripe connected by OAuth (the same steps as Slack's, not shown), then throttled.
    const stripeStart = this.json(await this.call("alice", "POST", "/api/integrations/stripe/oauth/start"), 200);
    const stripeConsent = await this.sandboxGet("stripe", String(stripeStart.authUrl));
    const stripeCallback = new URL(headerOf(stripeConsent, "location") ?? "");
    const stripeOAuth = this.json(
      await this.call("alice", "POST", "/api/integrations/stripe/oauth/complete", {
        code: stripeCallback.searchParams.get("code"),
        state: stripeCallback.searchParams.get("state"),
      }),
      201,
    );
    this.registerConnection("stripe", stripeOAuth);
    x.stripeThrottle = await this.sandboxCall("stripe", "POST", "/_sandbox/faults", { fault: "rate-limit" });
    this.json(x.stripeThrottle, 201);
    // maxAge=0: a probe now, not the envelope the connect recorded a moment ago.
    x.stripeThrottledHealth = await this.call("alice", "GET", "/api/integrations/stripe/health?maxAge=0");
    this.json(x.stripeThrottledHealth, 200);
    await this.clearFaults("stripe");

    // An API-key connector: a key from the Stripe sandbox's credentials desk, connected for bob.
    x.stripeDesk = await this.sandboxCall("stripe", "POST", "/_sandbox/credentials?form=connect", {});
    const desk = this.json(x.stripeDesk, 201);
    p.addKeepingPrefix(str(desk.apiKey), "sk_test_", "stripe-secret-key");
    x.stripeConnect = await this.call("bob", "POST", "/api/integrations/stripe/connections", desk);
    this.registerConnection("stripe", this.json(x.stripeConnect, 201));
    x.stripeHealth = await this.call("bob", "GET", "/api/integrations/stripe/health");
    this.json(x.stripeHealth, 200);

    // One error body of each type, on bob's Stripe connection. A well-formed key no sandbox ever issued
    // (fixed, so it needs no placeholder), and one that is not a Stripe key at all.
    x.errorAuthKey = await this.counted("stripe", () => this.call("bob", "POST", "/api/integrations/stripe/connections", { apiKey: NEVER_ISSUED_STRIPE_KEY }));
    expectError(x.errorAuthKey, 424, "auth");
    x.errorAuthToken = await this.counted("stripe", () => this.call(undefined, "GET", "/api/integrations/stripe/health"));
    expectError(x.errorAuthToken, 401, "auth");
    x.errorSchemaField = await this.counted("stripe", () => this.call("bob", "POST", "/api/integrations/stripe/connections", { apiKey: "not-a-key" }));
    expectError(x.errorSchemaField, 400, "schema");
    x.errorSchemaProvider = await this.withFault("stripe", ERROR_FAULTS.errorSchemaProvider, () => this.call("bob", "POST", "/api/integrations/stripe/test"));
    expectError(x.errorSchemaProvider, 422, "schema");
    x.errorUpstream = await this.withFault("stripe", ERROR_FAULTS.errorUpstream, () => this.call("bob", "POST", "/api/integrations/stripe/test"));
    expectError(x.errorUpstream, 502, "upstream");
    x.errorNetwork = await this.withFault("stripe", ERROR_FAULTS.errorNetwork, () => this.call("bob", "POST", "/api/integrations/stripe/test"));
    expectError(x.errorNetwork, 503, "network");
    // Last: the pacer holds the account back for the hour the provider asked for.
    x.errorRateLimit = await this.withFault("stripe", ERROR_FAULTS.errorRateLimit, () => this.call("bob", "POST", "/api/integrations/stripe/test"));
    expectError(x.errorRateLimit, 429, "rate-limit");
    return x;
  }

  /** The state, verifier, PKCE challenge, client id and the flow's cookie of an OAuth start. */
  private registerStart(provider: ProviderId, start: Json, exchange: Exchange): void {
    const p = this.placeholders;
    p.addKeepingPrefix(str(start.state), `${provider}_`, "state");
    p.add(str(start.codeVerifier), "<code-verifier>");
    const authUrl = new URL(String(start.authUrl));
    p.add(authUrl.searchParams.get("code_challenge") ?? undefined, "<code-challenge>");
    p.add(authUrl.searchParams.get("client_id") ?? undefined, `<${provider}-client-id>`);
    const cookie = /^af_oauth_([^=;]+)=([^;]+)/.exec(headerOf(exchange, "set-cookie") ?? "");
    p.add(cookie?.[1], "<flow-id>");
    p.add(cookie?.[2], "<browser-binding>");
  }

  /** A public connection's id, masked token and the account it names at the provider. */
  private registerConnection(provider: ProviderId, connection: Json): void {
    const p = this.placeholders;
    p.addKeepingPrefix(str(connection.id), "conn_", `${provider}-${String(connection.authMethod)}`);
    p.addMasked(str(connection.tokenMasked));
    p.add(str(connection.teamId), "<slack-team-id>");
    p.addKeepingPrefix(str(connection.accountId), "acct_", `stripe-${String(connection.authMethod)}-account`);
  }

  private async token(user: string): Promise<string> {
    const known = this.tokens.get(user);
    if (known) return known;
    // As `autoflow-integrations token --user <id>` mints it, from the secret the service made in its data folder.
    let out = "";
    let err = "";
    const code = await tokenCommand(["--user", user], { env: this.env, out: (t) => (out += t), err: (t) => (err += t), usage: "" });
    if (code !== 0) throw new Error(`token --user ${user} exited ${code}: ${err}`);
    const token = out.trim();
    this.tokens.set(user, token);
    return token;
  }

  /** A request to the service, as `user` (no Authorization header without one). */
  private async call(user: string | undefined, method: string, path: string, body?: unknown): Promise<Exchange> {
    const headers: [string, string][] = [["Host", new URL(PUBLIC_URL).host]];
    const sent: Record<string, string> = {};
    if (user !== undefined) {
      headers.push(["Authorization", "Bearer <user JWT>"]);
      sent.authorization = `Bearer ${await this.token(user)}`;
    }
    if (body !== undefined) {
      headers.push(["Content-Type", "application/json"]);
      sent["content-type"] = "application/json";
    }
    const response = await fetch(`${this.service.url ?? ""}${path}`, {
      method,
      headers: sent,
      redirect: "manual",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { server: "service", request: { method, path, headers, ...(body === undefined ? {} : { body }) }, response: await recorded(response) };
  }

  /** A request to a sandbox; `target` is its path or a whole URL on it (a consent URL the service made). */
  private async sandboxCall(provider: ProviderId, method: string, target: string, body?: unknown): Promise<Exchange> {
    const origin = this.service.sandboxes[provider]?.url;
    if (!origin) throw new Error(`${provider} has no sandbox`);
    const url = new URL(target, origin);
    if (url.origin !== origin) throw new Error(`${target} is not on ${provider}'s sandbox`);
    const headers: [string, string][] = [["Host", `127.0.0.1:${DEFAULT_SANDBOX_BASE_PORT + PROVIDER_IDS.indexOf(provider)}`]];
    if (body !== undefined) headers.push(["Content-Type", "application/json"]);
    const response = await fetch(url, {
      method,
      redirect: "manual",
      ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    return { server: provider, request: { method, path: url.pathname + url.search, headers, ...(body === undefined ? {} : { body }) }, response: await recorded(response) };
  }

  private sandboxGet(provider: ProviderId, url: string): Promise<Exchange> {
    return this.sandboxCall(provider, "GET", url);
  }

  private async withFault(provider: ProviderId, fault: Readonly<Json>, run: () => Promise<Exchange>): Promise<Exchange> {
    this.json(await this.sandboxCall(provider, "POST", "/_sandbox/faults", fault), 201);
    try {
      return await this.counted(provider, run);
    } finally {
      await this.clearFaults(provider);
    }
  }

  /** `run`'s exchange, with the number of requests the provider's sandbox received meanwhile (its control plane not counted). */
  private async counted(provider: ProviderId, run: () => Promise<Exchange>): Promise<Exchange> {
    expectStatus(await this.sandboxCall(provider, "DELETE", "/_sandbox/requests"), 200);
    const exchange = await run();
    const log = await this.sandboxCall(provider, "GET", "/_sandbox/requests");
    return { ...exchange, providerCalls: (log.response.body as { requests: unknown[] }).requests.length };
  }

  private async clearFaults(provider: ProviderId): Promise<void> {
    await this.sandboxCall(provider, "DELETE", "/_sandbox/faults");
    // Back in step with the sandboxes' clock after the retries' (skipped) waits.
    this.clock.offsetMs = 0;
  }

  private json(exchange: Exchange, status: number): Json {
    expectStatus(exchange, status);
    return exchange.response.body as Json;
  }
}

async function recorded(response: Response): Promise<Exchange["response"]> {
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  const headers: [string, string][] = [];
  for (const name of SHOWN_RESPONSE_HEADERS) {
    const values = name === "set-cookie" ? response.headers.getSetCookie() : [response.headers.get(name)].filter((v): v is string => v !== null);
    for (const value of values) headers.push([canonicalHeader(name), value]);
  }
  return { status: response.status, headers, body: type.includes("json") && text !== "" ? (JSON.parse(text) as unknown) : text };
}

const canonicalHeader = (name: string): string =>
  name === "www-authenticate" ? "WWW-Authenticate" : name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const headerOf = (exchange: Exchange, name: string): string | undefined =>
  exchange.response.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];

function expectStatus(exchange: Exchange, status: number): void {
  if (exchange.response.status !== status) {
    throw new Error(`${exchange.request.method} ${exchange.request.path} answered ${exchange.response.status}, not ${status}: ${JSON.stringify(exchange.response.body)}`);
  }
}

function expectError(exchange: Exchange, status: number, type: string): void {
  expectStatus(exchange, status);
  const error = (exchange.response.body as { error?: { type?: string } }).error;
  if (error?.type !== type) throw new Error(`${exchange.request.method} ${exchange.request.path} answered a ${String(error?.type)} error, not ${type}`);
}

/**
 * Runs of letters and digits that look random (ten or more characters, both
 * kinds): what a new random field would look like, left without a
 * placeholder. Percent-escapes are not part of a run.
 */
function randomLooking(text: string): string[] {
  const runs = text.split(NEVER_ISSUED_STRIPE_KEY).join(" ").replace(/%[0-9A-Fa-f]{2}/g, " ").match(/[A-Za-z0-9]{10,}/g) ?? [];
  return runs.filter((run) => /\d/.test(run) && /[A-Za-z]/.test(run));
}

function renderDocument(x: Record<ExchangeName, Exchange>, placeholders: Placeholders, service: Service): string {
  const sandboxOrigins = Object.entries(service.sandboxes).map(([id, sandbox]) => [sandbox.url, `http://127.0.0.1:${DEFAULT_SANDBOX_BASE_PORT + PROVIDER_IDS.indexOf(id as ProviderId)}`] as const);
  const leftRandom: string[] = [];
  const show = (exchange: Exchange): string => {
    const shown = renderExchange(exchange, (text) => {
      let out = placeholders.apply(text);
      for (const [real, stable] of sandboxOrigins) out = out.split(real).join(stable);
      return out;
    });
    leftRandom.push(...randomLooking(shown));
    return shown;
  };
  const faultOf = (name: keyof typeof ERROR_FAULTS): string => "`" + JSON.stringify(ERROR_FAULTS[name]) + "`";
  const stripePolicy = RETRY_POLICIES.stripe;
  const lines = [
    "<!-- Generated by `npm run docs:contract` (and `npm run docs`) from real requests to the service and its sandboxes: src/testing/contractCapture.ts. Do not edit: regenerate; test/e2e/contractDoc.test.ts fails while this file differs from a fresh capture. -->",
    "",
    "# Integration SDK v1, by example",
    "",
    "Every request and answer below was sent to and received from the service as `npm start` runs it:",
    "SQLite in a (temporary) data folder, every connector on its offline sandbox, all of it on 127.0.0.1,",
    "and a user JWT as `autoflow-integrations token --user <id>` mints it. The types, the error taxonomy",
    "and the retry rule they illustrate are in [the contract](contract.md) and",
    "[`contract.ts`](../../src/integrations/shared/contract.ts); the section of the seed (the frozen",
    "Integration SDK v1 text) each example reproduces is named with it. Retry waits are skipped (a virtual",
    "clock) so the retried examples cost no time; nothing else differs from a real run.",
    "",
    "What differs from one run to the next is shown as a placeholder, the same value as the same",
    "placeholder everywhere it appears: the user JWT (`<user JWT>`), the OAuth `state` (its provider",
    "prefix kept: `slack_<state>`), the PKCE `<code-verifier>` and `<code-challenge>`, the sandbox's",
    "`<authorization-code>` and client id, the flow's cookie (`af_oauth_<flow-id>=<browser-binding>`),",
    "connection ids (`conn_<provider-authMethod>`), the random end of a masked token (`xoxb****<last-4>`:",
    "at most the first and last 4 characters of a token are ever shown), the accounts the sandboxes",
    "make up (`<slack-team-id>`, `acct_<...>`) and keys they issue, and every timestamp (shown as",
    `\`${PLACEHOLDER_INSTANT}\`). Sandboxes are shown at the stable ports \`npm start\` gives them`,
    "(4100 to 4107: Slack 4100, Stripe 4102) and the service at its default public URL,",
    "`http://localhost:3000`. Response headers are those a caller acts on; `Date`, `Content-Length`,",
    "`Connection` and the service's own `X-RateLimit-*` are left out.",
    "",
    "## The seed's two examples",
    "",
    "### Start an OAuth flow",
    "",
    'Seed, "Examples: Start an OAuth flow" (and "Lifecycle hooks", `beginOAuth`): the answer has exactly',
    "the four fields of `Tier1OAuthStartResult`, `codeVerifier` included because Slack's flow uses PKCE.",
    "`authUrl` is the sandbox's authorize page with the PKCE challenge and the registered redirect URI.",
    "The answer also sets the cookie that binds the flow to this browser: only the callback reads it.",
    "",
    show(x.slackStart),
    "",
    "### Consume a health response",
    "",
    'Seed, "Examples: Consume a health response" (and "Health reporting interface"): Stripe, connected',
    "by OAuth (the same steps as Slack's below), while its sandbox throttles every request. The probe",
    "reached the API and the credential is good, but the provider answered 429: `degraded`,",
    '`rateLimited: true`, `errorType: "rate-limit"`, with the connection\'s metadata beside the envelope.',
    "First the sandbox is told to throttle (its control plane, under `/_sandbox/`):",
    "",
    show(x.stripeThrottle),
    "",
    "Then the health route, asking for a probe now (`maxAge=0`; without it, an envelope recorded in the last 30 seconds is the answer, with no provider call):",
    "",
    show(x.stripeThrottledHealth),
    "",
    "## The lifecycle of an OAuth connector: Slack",
    "",
    'Seed, "Lifecycle hooks": `beginOAuth`, `completeOAuth`, `listConnections`, `testConnection`, `health`',
    "and `disconnect`, one route each. It begins with the flow started in the first example above.",
    "",
    "### The provider's consent",
    "",
    "The browser follows `authUrl`. The sandbox approves at once and sends the browser back to the",
    "service's callback with a code and the flow's state. (The browser's `GET` of that callback, with",
    "the flow's cookie, completes the flow and answers an HTML page; a client holding the user's token",
    "can complete it instead with the code and state, as below.)",
    "",
    show(x.slackConsent),
    "",
    "### `completeOAuth`",
    "",
    'Seed, "Auth abstractions": the answer is the public connection, the frozen common fields (`id`,',
    "`userId`, `authMethod`, `tokenMasked`, `createdAt`) with Slack's metadata `{ scopes, teamId, teamName? }`.",
    "No token is ever in an answer; `tokenMasked` shows at most its first and last 4 characters.",
    "",
    show(x.slackComplete),
    "",
    "### `listConnections`",
    "",
    "The user's active connections at Slack, each in the same public shape.",
    "",
    show(x.slackList),
    "",
    "### `testConnection`",
    "",
    "One call to the provider with the stored credential; the answer is a flat map of strings",
    "(`Record<string, string | undefined>`) naming the connection and what the provider said about it.",
    "",
    show(x.slackTest),
    "",
    "### `health`, ok",
    "",
    'Seed, "Health reporting interface": the envelope of a healthy connection. Slack\'s tokens here do',
    'not expire, so `tokenRefreshStatus` is `"not_applicable"`.',
    "",
    show(x.slackHealth),
    "",
    "### `disconnect`",
    "",
    "The token is revoked at the provider (Slack has a revoke endpoint: `revocation` says how it went)",
    "and the connection is kept with its `revokedAt`.",
    "",
    show(x.slackDisconnect),
    "",
    "### `health`, after the disconnect",
    "",
    "With no active connection left the envelope is `down`, an `auth` problem, and says what to do.",
    "",
    show(x.slackHealthAfter),
    "",
    "## An API-key connector: Stripe",
    "",
    'Seed, "Lifecycle hooks" (`connectApiKey`, `health`) and "Auth abstractions" (Stripe\'s metadata',
    "`{ scopes, accountId, accountName?, accountEmail?, livemode }`). A secret key, as Stripe's dashboard",
    "hands one out, from the sandbox's credentials desk (`?form=connect`: just the fields",
    "`POST .../connections` takes):",
    "",
    show(x.stripeDesk),
    "",
    "Connected for another user, bob, as it came. The key is checked at the provider before it is stored:",
    "",
    show(x.stripeConnect),
    "",
    "Its health:",
    "",
    show(x.stripeHealth),
    "",
    "## One error of each type",
    "",
    'Seed, "Error contract and retry classification": every failure answers one body,',
    "`{ error: { type, message, retryable, provider?, ... } }`, whose `type` is one of the five and whose",
    "`retryable` is true for `rate-limit`, `network` and `upstream` only (those are retried within the",
    "connector's budget before they are answered; `auth` and `schema` fail at once). The additive `code`,",
    "`field`, `providerStatus` and `retryAfterSeconds` come when known. All on bob's Stripe connection",
    "from the section above, each provider failure made by a fault the Stripe sandbox is told to produce",
    "(`POST /_sandbox/faults`, cleared after).",
    "",
    "### `auth`: a key the provider refuses",
    "",
    "A well-formed Stripe key that was never issued: the provider answers 401, the service 424 (the",
    "provider refused the credential) and stores nothing.",
    "",
    show(x.errorAuthKey),
    "",
    "### `auth`: no user token",
    "",
    "A request to the service without `Authorization`: 401, before any provider is involved.",
    "",
    show(x.errorAuthToken),
    "",
    "### `schema`: a bad field",
    "",
    "A value that is not a Stripe key at all: 400 naming the `field`, and no call to the provider.",
    "",
    show(x.errorSchemaField),
    "",
    "### `schema`: the provider refuses the request for good",
    "",
    `With the sandbox told ${faultOf("errorSchemaProvider")}, Stripe answers the test's call with a permanent 400:`,
    "422 (not the 400 of a malformed request to the service), with the provider's status, not retried.",
    "",
    show(x.errorSchemaProvider),
    "",
    "### `upstream`: the provider fails",
    "",
    `With the sandbox told ${faultOf("errorUpstream")}, every call answers 500: retried within Stripe's budget`,
    `(${stripePolicy.attempts} attempts, ${stripePolicy.budgetMs / 1000} s; see [the retry policy](tier1-retry-policy.md)), then 502, \`retryable: true\`.`,
    "",
    show(x.errorUpstream),
    "",
    "### `network`: no usable response",
    "",
    `With the sandbox told ${faultOf("errorNetwork")}, it closes every connection before answering:`,
    "retried like `upstream`, then 503.",
    "",
    show(x.errorNetwork),
    "",
    "### `rate-limit`: throttled",
    "",
    `With the sandbox told ${faultOf("errorRateLimit")}, Stripe answers 429 with \`Retry-After: 3600\`: longer`,
    `than the ${stripePolicy.maxRetryAfterMs / 1000} s Stripe's policy is willing to wait, so it is answered at once, 429 with the`,
    "provider's `Retry-After`, for the caller to wait out.",
    "",
    show(x.errorRateLimit),
    "",
  ];
  const markdown = lines.join("\n");
  const leaked = placeholders.values().filter((value) => markdown.includes(value));
  if (leaked.length > 0) throw new Error(`values that differ run to run left in the document: ${leaked.join(", ")}`);
  if (leftRandom.length > 0) throw new Error(`random-looking values without a placeholder: ${[...new Set(leftRandom)].join(", ")}`);
  return markdown;
}

function renderExchange(exchange: Exchange, stable: (text: string) => string): string {
  const { request, response } = exchange;
  const requestLines = [`${request.method} ${request.path} HTTP/1.1`, ...request.headers.map(([name, value]) => `${name}: ${value}`)];
  if (request.body !== undefined) requestLines.push("", JSON.stringify(request.body, null, 2));
  const responseLines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}`, ...response.headers.map(([name, value]) => `${name}: ${value}`)];
  if (response.body !== "") responseLines.push("", typeof response.body === "string" ? response.body : JSON.stringify(response.body, null, 2));
  return ["Request:", "", "```http", stable(requestLines.join("\n")), "```", "", "Response:", "", "```http", stable(responseLines.join("\n")), "```"].join("\n");
}
