/**
 * No secret leaks: every route and every sandbox flow of all eight
 * connectors, with the service logging at debug level, then a scan of the
 * whole log output, every response (bodies, error messages and headers) for
 * each access token, refresh token, client secret, authorization code, PKCE
 * verifier and API key the run used. Zero hits.
 *
 * One exception is the contract's own: POST .../oauth/start returns the PKCE
 * verifier to its caller (`codeVerifier`), so that response alone is not
 * scanned for the verifier it hands out; nor for the browser binding its
 * `Set-Cookie` hands the browser (only its body is scanned).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROVIDER_IDS, type ProviderId } from "../../src/integrations/registry.js";
import { cookieHeader, startHarness, type Harness } from "../../src/testing/harness.js";

type Json = Record<string, unknown>;
type Seen = { text: string; exceptVerifier?: string };

const TTL = 3600;

describe("leak scan", () => {
  const logLines: string[] = [];
  const seen: Seen[] = [];
  const secrets = new Map<string, string>(); // secret -> what it is
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      logLines,
      providerTimeoutMs: 400,
      sandboxOptions: Object.fromEntries(PROVIDER_IDS.map((id) => [id, { tokenRotation: true, accessTokenTtlSeconds: TTL }])),
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const remember = (value: unknown, what: string) => {
    if (typeof value === "string" && value.length >= 8) secrets.set(value, what);
  };
  async function call(input: Parameters<Harness["request"]>[0], exceptVerifier?: string) {
    const res = await h.request(input);
    seen.push({ text: `${JSON.stringify(res.headers)}\n${res.body}`, ...(exceptVerifier ? { exceptVerifier } : {}) });
    return res;
  }
  async function rememberStored(provider: ProviderId, user: string) {
    for (const record of await h.service.store.vault.listConnections({ userId: user, provider })) {
      const stored = await h.service.store.vault.readSecrets(record);
      remember(stored.accessToken, `${provider} access token`);
      remember(stored.refreshToken, `${provider} refresh token`);
    }
  }
  async function oauth(provider: ProviderId, user: string, viaComplete: boolean) {
    const startRes = await h.request({ method: "POST", url: `/api/integrations/${provider}/oauth/start`, user });
    const begun = startRes.json() as Json;
    seen.push({ text: startRes.body, ...(typeof begun.codeVerifier === "string" ? { exceptVerifier: begun.codeVerifier } : {}) });
    remember(begun.codeVerifier, `${provider} PKCE verifier`);
    const cookie = cookieHeader(startRes.headers["set-cookie"]);
    remember(cookie.slice(cookie.indexOf("=") + 1), `${provider} browser binding`);
    const consent = await fetch(begun.authUrl as string, { redirect: "manual" });
    const callback = new URL(consent.headers.get("location") as string);
    remember(callback.searchParams.get("code"), `${provider} authorization code`);
    if (viaComplete) {
      await call({
        method: "POST",
        url: `/api/integrations/${provider}/oauth/complete`,
        user,
        body: { code: callback.searchParams.get("code"), state: callback.searchParams.get("state") },
      });
    } else {
      await call({ method: "GET", url: callback.pathname + callback.search, headers: { cookie } });
    }
    // Replayed, by the browser that began it and by one that did not: errors whose messages must not echo the code either.
    await call({ method: "GET", url: callback.pathname + callback.search, headers: { cookie } });
    await call({ method: "GET", url: callback.pathname + callback.search });
    await rememberStored(provider, user);
  }

  it("runs every route and sandbox flow of every connector", async () => {
    await call({ method: "GET", url: "/api/integrations", user: "leak" });
    for (const provider of PROVIDER_IDS) {
      const user = `leak-${provider}`;
      const base = `/api/integrations/${provider}`;
      remember(h.service.integrations[provider].settings.clientSecret, `${provider} client secret`);

      await oauth(provider, user, false);
      await oauth(provider, `${user}-complete`, true);
      const desk = (await h.sandbox(provider, "/_sandbox/credentials", { body: {} })) as Json;
      remember(desk.apiKey, `${provider} API key`);
      remember(desk.accessToken, `${provider} pasted token`);
      const body = Object.fromEntries(Object.entries(desk).filter(([k]) => ["apiKey", "accessToken", "baseUrl", "email"].includes(k)));
      await call({ method: "POST", url: `${base}/connections`, user: `${user}-key`, body });
      // A forged key, refused: its message must not quote it.
      const field = "apiKey" in body ? "apiKey" : "accessToken";
      const forged = `${String(body[field]).slice(0, -6)}ZZZZZZ`;
      remember(forged, `${provider} forged key`);
      await call({ method: "POST", url: `${base}/connections`, user: `${user}-key`, body: { ...body, [field]: forged } });

      await call({ method: "GET", url: `${base}/connections`, user });
      await call({ method: "POST", url: `${base}/test`, user });
      await call({ method: "GET", url: `${base}/health`, user });
      // Every fault, through test and health.
      for (const fault of ["rate-limit", "server-error", "malformed", "bad-request", "disconnect"]) {
        await h.sandbox(provider, "/_sandbox/faults", { body: { fault, times: 4 } });
        await call({ method: "POST", url: `${base}/test`, user });
        await call({ method: "GET", url: `${base}/health`, user });
        await h.sandbox(provider, "/_sandbox/faults", { method: "DELETE" });
      }
      // A refresh (where tokens expire), then the new tokens are remembered too.
      h.clock.advance((TTL + 60) * 1000);
      try {
        await call({ method: "POST", url: `${base}/test`, user });
      } finally {
        h.clock.advance(-(TTL + 60) * 1000);
      }
      await rememberStored(provider, user);
      // Revoked at the provider, then disconnected.
      const list = (await h.request({ method: "GET", url: `${base}/connections`, user: `${user}-complete` })).json() as { connections: Json[] };
      for (const connection of list.connections) await call({ method: "DELETE", url: `${base}/connections/${String(connection.id)}`, user: `${user}-complete` });
      await h.sandbox(provider, "/_sandbox/faults", { body: { fault: "revoke-all" } });
      await call({ method: "POST", url: `${base}/test`, user });
      await call({ method: "GET", url: `${base}/health`, user });
      for (const connection of (await h.request({ method: "GET", url: `${base}/connections`, user })).json().connections as Json[]) {
        await call({ method: "DELETE", url: `${base}/connections/${String(connection.id)}`, user });
      }
    }
    expect(seen.length).toBeGreaterThan(150);
    expect(logLines.length).toBeGreaterThan(150);
  }, 120_000);

  it("finds none of the secrets it used in the logs, responses or error messages", () => {
    const kinds = new Set([...secrets.values()].map((what) => what.replace(/^\S+ /, "")));
    for (const kind of ["access token", "refresh token", "client secret", "authorization code", "PKCE verifier", "API key"]) {
      expect([...kinds].some((k) => k === kind), kind).toBe(true);
    }
    const hits: string[] = [];
    for (const [secret, what] of secrets) {
      if (logLines.some((line) => line.includes(secret))) hits.push(`${what} in the log`);
      if (seen.some((s) => s.exceptVerifier !== secret && s.text.includes(secret))) hits.push(`${what} in a response`);
    }
    process.stdout.write(
      `[autoflow] leak scan: ${secrets.size} secrets against ${logLines.length} log lines and ${seen.length} responses: ${hits.length} hits\n`,
    );
    expect(hits).toEqual([]);
  });
});
