/**
 * The sandboxes' enforced rate, and each connector's reader of the answers
 * it produces. Every sandbox is told 5 requests a window; five real,
 * authorized who-am-I calls pass with the provider's window headers
 * counting down, the sixth gets the provider's own throttled answer, and
 * the provider's reader turns those headers into the signal the pacer
 * uses. The counting windows are a minute long and the run starts well
 * inside one, so no window boundary falls between the six calls.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGmailSandbox } from "../integrations/gmail/sandbox.js";
import { gmailRateLimit } from "../integrations/gmail/rateLimit.js";
import { startHubSpotSandbox } from "../integrations/hubspot/sandbox.js";
import { hubspotRateLimit } from "../integrations/hubspot/rateLimit.js";
import { startJiraSandbox } from "../integrations/jira/sandbox.js";
import { jiraRateLimit } from "../integrations/jira/rateLimit.js";
import { WHO_AM_I_OPERATION, WHO_AM_I_QUERY } from "../integrations/linear/connector.js";
import { startLinearSandbox } from "../integrations/linear/sandbox.js";
import { linearRateLimit } from "../integrations/linear/rateLimit.js";
import { startSentrySandbox } from "../integrations/sentry/sandbox.js";
import { sentryRateLimit } from "../integrations/sentry/rateLimit.js";
import { startSlackSandbox } from "../integrations/slack/sandbox.js";
import { slackRateLimit } from "../integrations/slack/rateLimit.js";
import { STRIPE_API_VERSION } from "../integrations/stripe/connector.js";
import { startStripeSandbox } from "../integrations/stripe/sandbox.js";
import { stripeRateLimit } from "../integrations/stripe/rateLimit.js";
import { startTeamsSandbox } from "../integrations/teams/sandbox.js";
import { teamsRateLimit } from "../integrations/teams/rateLimit.js";
import type { RateLimitReader, RateSignal } from "../integrations/shared/rateSignal.js";
import type { SandboxOptions, StartedSandbox } from "./kit.js";

type Json = Record<string, unknown>;
type WhoAmI = { method: "GET" | "POST"; path: string; headers: Record<string, string>; body?: string };

const LIMIT = 5;
const WINDOW_MS = 60_000;
/** The run starts only when at least this much of the current window is left. */
const WINDOW_MARGIN_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const json = (body: unknown) => ({ headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const credentialOf = async (sandbox: StartedSandbox): Promise<Json> =>
  (await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", ...json({}) })).json()) as Json;
const bearer = (token: unknown) => ({ authorization: `Bearer ${String(token)}` });

/** Each provider's sandbox, the request its connector's whoAmI sends, and what its answers tell. */
type Case = {
  provider: string;
  start(options: SandboxOptions): Promise<StartedSandbox>;
  reader: RateLimitReader;
  whoAmI(credential: Json): WhoAmI;
  /** The status of the throttled answer, and a check that its body is the provider's. */
  limitedStatus: number;
  limitedBody(text: string): void;
  /** What the window headers tell: a count and a reset instant, only the window's length (HubSpot), or nothing. */
  window: "reset" | "length" | "none";
  /** How the throttled answer says how long to wait. */
  wait: "retry-after" | "until-reset" | "one-window" | "none";
};

const CASES: Case[] = [
  {
    provider: "slack",
    start: startSlackSandbox,
    reader: slackRateLimit,
    whoAmI: (c) => ({ method: "POST", path: "/api/auth.test", headers: bearer(c.accessToken) }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toEqual({ ok: false, error: "ratelimited" }),
    window: "none",
    wait: "retry-after",
  },
  {
    provider: "hubspot",
    start: startHubSpotSandbox,
    reader: hubspotRateLimit,
    whoAmI: (c) => ({ method: "GET", path: "/account-info/v3/details", headers: bearer(c.accessToken) }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toMatchObject({ status: "error", errorType: "RATE_LIMIT", policyName: "TEN_SECONDLY_ROLLING" }),
    window: "length",
    wait: "one-window",
  },
  {
    provider: "stripe",
    start: startStripeSandbox,
    reader: stripeRateLimit,
    whoAmI: (c) => ({ method: "GET", path: "/v1/account", headers: { ...bearer(c.apiKey), "stripe-version": STRIPE_API_VERSION } }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toMatchObject({ error: { code: "rate_limit" } }),
    window: "none",
    wait: "none",
  },
  {
    provider: "gmail",
    start: startGmailSandbox,
    reader: gmailRateLimit,
    whoAmI: (c) => ({ method: "GET", path: "/gmail/v1/users/me/profile", headers: bearer(c.accessToken) }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toMatchObject({ error: { code: 429, status: "RESOURCE_EXHAUSTED" } }),
    window: "none",
    wait: "none",
  },
  {
    provider: "linear",
    start: startLinearSandbox,
    reader: linearRateLimit,
    // A personal API key goes bare, without Bearer (linearAuthorization).
    whoAmI: (c) => ({
      method: "POST",
      path: "/graphql",
      headers: { authorization: String(c.apiKey), "content-type": "application/json" },
      body: JSON.stringify({ query: WHO_AM_I_QUERY, operationName: WHO_AM_I_OPERATION }),
    }),
    // The sandbox's default: RATELIMITED under HTTP 400, as observed in 2025.
    limitedStatus: 400,
    limitedBody: (text) => expect((JSON.parse(text) as { errors: { extensions: Json }[] }).errors[0]?.extensions).toMatchObject({ code: "RATELIMITED", statusCode: 429 }),
    window: "reset",
    wait: "until-reset",
  },
  {
    provider: "sentry",
    start: startSentrySandbox,
    reader: sentryRateLimit,
    whoAmI: (c) => ({ method: "GET", path: "/api/0/organizations/", headers: bearer(c.accessToken) }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toBe(`You are attempting to use this endpoint too frequently. Limit is ${LIMIT} requests in ${WINDOW_MS / 1000} seconds`),
    window: "reset",
    wait: "until-reset",
  },
  {
    provider: "teams",
    start: startTeamsSandbox,
    reader: teamsRateLimit,
    whoAmI: (c) => ({
      method: "POST",
      path: "/v1.0/$batch",
      headers: { ...bearer(c.accessToken), "content-type": "application/json" },
      body: JSON.stringify({
        requests: [
          { id: "me", method: "GET", url: "/me?$select=id,displayName,userPrincipalName,mail" },
          { id: "joinedTeams", method: "GET", url: "/me/joinedTeams" },
          { id: "organization", method: "GET", url: "/organization?$select=id,displayName" },
        ],
      }),
    }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toMatchObject({ error: { code: "TooManyRequests" } }),
    window: "none",
    wait: "retry-after",
  },
  {
    provider: "jira",
    start: startJiraSandbox,
    reader: jiraRateLimit,
    // An API token: Basic with the account's email (jiraAuthorization), at the site's base URL.
    whoAmI: (c) => ({
      method: "GET",
      path: "/rest/api/3/myself",
      headers: { authorization: `Basic ${Buffer.from(`${String(c.email)}:${String(c.apiKey)}`).toString("base64")}`, accept: "application/json" },
    }),
    limitedStatus: 429,
    limitedBody: (text) => expect(JSON.parse(text)).toMatchObject({ errorMessages: ["Rate limit exceeded."] }),
    window: "reset",
    wait: "retry-after",
  },
];

const control = async (sandbox: StartedSandbox, method: "GET" | "PUT" | "DELETE", body?: unknown): Promise<{ status: number; body: Json }> => {
  const response = await fetch(`${sandbox.url}/_sandbox/rate-limit`, { method, ...(body === undefined ? {} : json(body)) });
  return { status: response.status, body: (await response.json()) as Json };
};

describe.each(CASES)("an enforced rate at the $provider sandbox", (c) => {
  let sandbox: StartedSandbox;
  let credential: Json;
  beforeAll(async () => {
    sandbox = await c.start({ port: 0 });
    credential = await credentialOf(sandbox);
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  const call = async () => {
    const request = c.whoAmI(credential);
    const response = await fetch(`${sandbox.url}${request.path}`, { method: request.method, headers: request.headers, ...(request.body ? { body: request.body } : {}) });
    const nowMs = Date.now();
    return { response, nowMs, text: await response.text(), signal: c.reader(response, nowMs) };
  };

  it("lets the budget through with the provider's window headers, then answers as the provider throttles", async () => {
    // Well inside a window: the six calls below take milliseconds, the margin is seconds.
    const left = WINDOW_MS - (Date.now() % WINDOW_MS);
    if (left < WINDOW_MARGIN_MS) await sleep(left + 50);
    expect((await control(sandbox, "PUT", { requests: LIMIT, windowMs: WINDOW_MS })).status).toBe(200);
    const windowEnd = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + WINDOW_MS;

    for (let n = 1; n <= LIMIT; n++) {
      const { response, text, signal } = await call();
      expect(response.status, text).toBe(200);
      const expected: Record<Case["window"], RateSignal | undefined> = {
        // With minute windows aligned on the epoch, a reset in seconds (Sentry) or to the minute (Jira) is exact.
        reset: { limit: LIMIT, remaining: LIMIT - n, resetAtMs: windowEnd },
        // HubSpot's own 10-second count is replaced, not sent beside the enforced one.
        length: { limit: LIMIT, remaining: LIMIT - n, windowMs: WINDOW_MS },
        none: undefined,
      };
      expect(signal, `call ${n}`).toEqual(expected[c.window]);
      expect(response.headers.get("retry-after")).toBeNull();
    }

    const limited = await call();
    expect(limited.response.status).toBe(c.limitedStatus);
    c.limitedBody(limited.text);
    const toEnd = windowEnd - limited.nowMs;
    const retryAfterHeader = limited.response.headers.get("retry-after");
    if (c.wait === "retry-after") {
      // Whole seconds until the window ends, rounded up.
      expect(Number(retryAfterHeader)).toBeGreaterThanOrEqual(Math.max(1, Math.floor(toEnd / 1000)));
      expect(Number(retryAfterHeader)).toBeLessThanOrEqual(Math.ceil(toEnd / 1000) + 1);
    } else {
      // These providers send none on their throttle; the sandbox must not invent one.
      expect(retryAfterHeader).toBeNull();
    }
    const retryAfterMs: Record<Case["wait"], number | undefined> = {
      "retry-after": Number(retryAfterHeader) * 1000,
      "until-reset": windowEnd - limited.nowMs,
      "one-window": WINDOW_MS,
      none: undefined,
    };
    const windowPart: Record<Case["window"], RateSignal> = {
      reset: { limit: LIMIT, remaining: 0, resetAtMs: windowEnd },
      length: { limit: LIMIT, remaining: 0, windowMs: WINDOW_MS },
      none: {},
    };
    const expected = { ...windowPart[c.window], ...(retryAfterMs[c.wait] === undefined ? {} : { retryAfterMs: retryAfterMs[c.wait] }) };
    expect(limited.signal).toEqual(Object.keys(expected).length === 0 ? undefined : expected);

    expect((await control(sandbox, "GET")).body).toEqual({ rateLimit: { requests: LIMIT, windowMs: WINDOW_MS }, served: LIMIT, limited: 1 });
    // Removed, the budget is gone: the next call passes, and nothing is counted.
    expect((await control(sandbox, "DELETE")).body).toEqual({ rateLimit: null, served: 0, limited: 0 });
    expect((await call()).response.status).toBe(200);
    expect((await control(sandbox, "GET")).body).toEqual({ rateLimit: null, served: 0, limited: 0 });
  });
});

describe("the enforced rate's control plane", () => {
  let sandbox: StartedSandbox;
  let token: string;
  beforeAll(async () => {
    sandbox = await startSlackSandbox({ port: 0 });
    token = String((await credentialOf(sandbox)).accessToken);
  });
  afterAll(async () => {
    await sandbox?.close();
  });
  const authTest = async () => fetch(`${sandbox.url}/api/auth.test`, { method: "POST", headers: bearer(token) });

  it("is unlimited until told otherwise", async () => {
    expect(await control(sandbox, "GET")).toEqual({ status: 200, body: { rateLimit: null, served: 0, limited: 0 } });
  });

  it.each([
    [{ requests: 0, windowMs: 1000 }, "at requests"],
    [{ requests: 1.5, windowMs: 1000 }, "at requests"],
    [{ requests: 5, windowMs: -1 }, "at windowMs"],
    [{ requests: 5 }, "at windowMs"],
    [{ requests: 5, windowMs: "1000" }, "at windowMs"],
    [{ requests: 5, windowMs: 1000, burst: 2 }, '"burst"'],
  ])("refuses %j, saying what is wrong %s", async (body, field) => {
    const answer = await control(sandbox, "PUT", body);
    expect(answer.status).toBe(400);
    expect(String(answer.body.error)).toMatch(/^invalid rate limit/);
    expect(String(answer.body.error)).toContain(field);
    expect((await control(sandbox, "GET")).body.rateLimit).toBeNull();
  });

  it("refuses a body that is not JSON, and a request from another origin", async () => {
    const form = await fetch(`${sandbox.url}/_sandbox/rate-limit`, { method: "PUT", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "requests=1&windowMs=1000" });
    expect(form.status).toBe(415);
    const crossOrigin = await fetch(`${sandbox.url}/_sandbox/rate-limit`, { method: "PUT", headers: { "content-type": "application/json", origin: "https://evil.example" }, body: "{\"requests\":1,\"windowMs\":1000}" });
    expect(crossOrigin.status).toBe(403);
    expect((await control(sandbox, "GET")).body.rateLimit).toBeNull();
  });

  it("counts neither the control plane nor the consent page", async () => {
    expect((await control(sandbox, "PUT", { requests: 1, windowMs: WINDOW_MS })).status).toBe(200);
    try {
      for (let i = 0; i < 3; i++) {
        expect((await fetch(`${sandbox.url}/_sandbox/requests`)).status).toBe(200);
        // The consent page answers (an error page without a client_id), but is never throttled.
        expect((await fetch(`${sandbox.url}/oauth/v2/authorize`, { redirect: "manual" })).status).not.toBe(429);
      }
      expect((await control(sandbox, "GET")).body).toMatchObject({ served: 0, limited: 0 });
      expect((await authTest()).status).toBe(200);
      expect((await authTest()).status).toBe(429);
      expect((await control(sandbox, "GET")).body).toMatchObject({ served: 1, limited: 1 });
    } finally {
      await control(sandbox, "DELETE");
    }
  });

  it("counts in fixed windows aligned on the epoch clock, a new window with a new budget", async () => {
    // Sentry tells the window's end, so the test can wait for exactly that.
    const sentry = await startSentrySandbox({ port: 0, rateLimit: { requests: 1, windowMs: 1000 } });
    try {
      const { accessToken } = await credentialOf(sentry);
      const organizations = () => fetch(`${sentry.url}/api/0/organizations/`, { headers: bearer(accessToken) });
      // Just after a second starts: two local calls fit in the rest of it.
      await sleep(1000 - (Date.now() % 1000) + 5);
      const first = await organizations();
      expect(first.status).toBe(200);
      const reset = Number(first.headers.get("x-sentry-rate-limit-reset"));
      expect(reset * 1000).toBe(Math.floor(Date.now() / 1000) * 1000 + 1000);
      expect((await organizations()).status).toBe(429);
      await sleep(reset * 1000 - Date.now() + 5);
      const next = await organizations();
      expect(next.status).toBe(200);
      expect(Number(next.headers.get("x-sentry-rate-limit-reset"))).toBe(reset + 1);
      expect(await control(sentry, "GET")).toEqual({ status: 200, body: { rateLimit: { requests: 1, windowMs: 1000 }, served: 2, limited: 1 } });
    } finally {
      await sentry.close();
    }
  });

  it("refuses an invalid rate at start, naming the field", async () => {
    await expect(startSlackSandbox({ port: 0, rateLimit: { requests: 5, windowMs: 0 } })).rejects.toThrow(/rateLimit option is invalid[\s\S]*at windowMs$/);
    await expect(startSlackSandbox({ port: 0, rateLimit: { requests: -2, windowMs: 1000 } })).rejects.toThrow(/rateLimit option is invalid[\s\S]*at requests$/);
  });
});
