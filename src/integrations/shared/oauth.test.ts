import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { calculatePKCECodeChallenge } from "oauth4webapi";
import { describe, expect, it } from "vitest";
import { Keyring } from "../../store/keyring.js";
import { IntegrationError } from "./errors.js";
import {
  checkCompletion,
  codeChallengeS256,
  createBrowserBinding,
  createCodeVerifier,
  OAUTH_STATE_TTL_SECONDS,
  openState,
  readAuthorizationResponse,
  sealState,
} from "./oauth.js";

const UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
const UNRESERVED_PATTERN = /^[A-Za-z0-9\-._~]+$/;

function expectIntegrationError(fn: () => unknown, expected: { type?: string; code: string }): IntegrationError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(IntegrationError);
  const error = caught as IntegrationError;
  expect(error.code).toBe(expected.code);
  if (expected.type) expect(error.type).toBe(expected.type);
  return error;
}

describe("PKCE", () => {
  it("matches the RFC 7636 Appendix B example", () => {
    expect(codeChallengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  });

  it("agrees with oauth4webapi's calculatePKCECodeChallenge for any valid verifier", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: fc.constantFrom(...UNRESERVED), minLength: 43, maxLength: 128 }), async (verifier) => {
        expect(codeChallengeS256(verifier)).toBe(await calculatePKCECodeChallenge(verifier));
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    ["too short (42)", "a".repeat(42)],
    ["too long (129)", "a".repeat(129)],
    ["outside the unreserved set", `${"a".repeat(42)}+`],
  ])("refuses a verifier that is %s", (_label, verifier) => {
    expect(() => codeChallengeS256(verifier)).toThrow(/43 to 128 unreserved/);
  });

  it("creates verifiers of >= 43 unreserved characters, different each call", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const verifier = createCodeVerifier();
      expect(verifier.length).toBeGreaterThanOrEqual(43);
      expect(verifier.length).toBeLessThanOrEqual(128);
      expect(verifier).toMatch(UNRESERVED_PATTERN);
      expect(() => codeChallengeS256(verifier)).not.toThrow();
      seen.add(verifier);
    }
    expect(seen.size).toBe(50);
  });
});

describe("sealState / openState", () => {
  const keyring = new Keyring([randomBytes(32)]);
  const now = Date.UTC(2025, 5, 1, 10, 0, 0);
  const known = ["slack", "stripe"] as const;

  it("round trips user, provider, expiry and verifier", () => {
    const verifier = createCodeVerifier();
    const { state, expiresAt } = sealState(keyring, { provider: "slack", userId: "alice", nowMs: now, codeVerifier: verifier });
    expect(expiresAt.getTime()).toBe(now + OAUTH_STATE_TTL_SECONDS * 1000);
    const opened = openState(keyring, { provider: "slack", state, nowMs: now + 1000, userId: "alice", knownProviders: known });
    expect(opened.provider).toBe("slack");
    expect(opened.userId).toBe("alice");
    expect(opened.codeVerifier).toBe(verifier);
    expect(opened.expiresAt.getTime()).toBe(expiresAt.getTime());
    expect(opened.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("round trips without a verifier and without a known user", () => {
    const { state } = sealState(keyring, { provider: "stripe", userId: "bob", nowMs: now });
    const opened = openState(keyring, { provider: "stripe", state, nowMs: now });
    expect(opened.userId).toBe("bob");
    expect(opened.codeVerifier).toBeUndefined();
    expect("codeVerifier" in opened).toBe(false);
  });

  it("starts with <provider>_ and carries at least 128 bits in the sealed part", () => {
    const { state } = sealState(keyring, { provider: "slack", userId: "u", nowMs: now });
    expect(state.startsWith("slack_")).toBe(true);
    const sealed = state.slice("slack_".length);
    expect(sealed).toMatch(/^[A-Za-z0-9_-]+$/);
    // 1 version + 8 key id + 12 IV + payload (with a 16-byte nonce) + 16 tag, base64url.
    const bytes = Buffer.from(sealed, "base64url").length;
    expect(bytes).toBeGreaterThan(1 + 8 + 12 + 16 + 16);
    expect(sealed.length * 6).toBeGreaterThanOrEqual(128 * 2);
  });

  it("gives two different states for the same user, provider and time", () => {
    const a = sealState(keyring, { provider: "slack", userId: "u", nowMs: now }).state;
    const b = sealState(keyring, { provider: "slack", userId: "u", nowMs: now }).state;
    expect(a).not.toBe(b);
    const hashA = openState(keyring, { provider: "slack", state: a, nowMs: now }).hash;
    const hashB = openState(keyring, { provider: "slack", state: b, nowMs: now }).hash;
    expect(hashA).not.toBe(hashB);
  });

  it("hashes the same state to the same value every time", () => {
    const { state } = sealState(keyring, { provider: "slack", userId: "u", nowMs: now });
    const first = openState(keyring, { provider: "slack", state, nowMs: now }).hash;
    const second = openState(keyring, { provider: "slack", state, nowMs: now + 5_000, userId: "u" }).hash;
    expect(second).toBe(first);
  });

  it("names a known other provider's state as state_wrong_provider", () => {
    const { state } = sealState(keyring, { provider: "stripe", userId: "u", nowMs: now });
    const error = expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: now, knownProviders: known }), {
      type: "schema",
      code: "state_wrong_provider",
    });
    expect(error.field).toBe("state");
  });

  it("calls a state with an unknown prefix state_invalid", () => {
    const { state } = sealState(keyring, { provider: "github", userId: "u", nowMs: now });
    expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: now, knownProviders: known }), { code: "state_invalid" });
    // Without the list of known providers, a foreign prefix is simply invalid.
    const stripe = sealState(keyring, { provider: "stripe", userId: "u", nowMs: now }).state;
    expectIntegrationError(() => openState(keyring, { provider: "slack", state: stripe, nowMs: now }), { code: "state_invalid" });
  });

  it.each(["", "slack", "_abc", "slack-abc", "SLACK_abc"])("calls the malformed state %j state_invalid", (state) => {
    expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: now, knownProviders: known }), { code: "state_invalid" });
  });

  it("refuses a state sealed for A whose prefix was rewritten to B", () => {
    const { state } = sealState(keyring, { provider: "slack", userId: "u", nowMs: now });
    const rewritten = `stripe_${state.slice("slack_".length)}`;
    expectIntegrationError(() => openState(keyring, { provider: "stripe", state: rewritten, nowMs: now, knownProviders: known }), {
      code: "state_invalid",
    });
  });

  it("refuses a state sealed with another keyring", () => {
    const other = new Keyring([randomBytes(32)]);
    const { state } = sealState(other, { provider: "slack", userId: "u", nowMs: now });
    expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: now }), { code: "state_invalid" });
  });

  it("refuses a state with any byte of the sealed part altered", () => {
    const { state } = sealState(keyring, { provider: "slack", userId: "u", nowMs: now });
    const sealed = Buffer.from(state.slice("slack_".length), "base64url");
    for (let i = 0; i < sealed.length; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i] = (tampered[i] as number) ^ 0x01;
      const altered = `slack_${tampered.toString("base64url")}`;
      expectIntegrationError(() => openState(keyring, { provider: "slack", state: altered, nowMs: now }), { code: "state_invalid" });
    }
  });

  it("refuses a truncated state", () => {
    const { state } = sealState(keyring, { provider: "slack", userId: "u", nowMs: now });
    expectIntegrationError(() => openState(keyring, { provider: "slack", state: state.slice(0, -6), nowMs: now }), { code: "state_invalid" });
  });

  it("refuses a state once it has expired", () => {
    const { state, expiresAt } = sealState(keyring, { provider: "slack", userId: "u", nowMs: now, ttlSeconds: 60 });
    expect(() => openState(keyring, { provider: "slack", state, nowMs: expiresAt.getTime() - 1 })).not.toThrow();
    expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: expiresAt.getTime() }), { code: "state_expired" });
    expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: now + 3_600_000 }), { code: "state_expired" });
  });

  it("refuses a state issued to another user", () => {
    const { state } = sealState(keyring, { provider: "slack", userId: "alice", nowMs: now });
    expectIntegrationError(() => openState(keyring, { provider: "slack", state, nowMs: now, userId: "mallory" }), {
      type: "schema",
      code: "state_wrong_user",
    });
  });
});

describe("checkCompletion: who may complete a state (RFC 9700 §4.5)", () => {
  const keyring = new Keyring([randomBytes(32)]);
  const now = Date.UTC(2025, 5, 1, 10, 0, 0);
  const binding = createBrowserBinding();
  const open = (browserBinding?: string) =>
    openState(keyring, { provider: "stripe", nowMs: now, state: sealState(keyring, { provider: "stripe", userId: "alice", nowMs: now, ...(browserBinding ? { browserBinding } : {}) }).state });
  const allows = (opened: ReturnType<typeof open>, proof: { userId?: string; browserBinding?: string; viaCallback: boolean }): boolean => {
    try {
      checkCompletion(opened, { provider: "stripe", ...proof });
      return true;
    } catch (error) {
      expect(error).toMatchObject({ type: "schema", code: "state_wrong_browser", field: "state" });
      return false;
    }
  };

  it("makes bindings of 256 random bits, different each call, that the state keeps only as a hash", () => {
    expect(binding).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(createBrowserBinding()).not.toBe(binding);
    const { state } = sealState(keyring, { provider: "stripe", userId: "alice", nowMs: now, browserBinding: binding });
    expect(state).not.toContain(binding);
    expect(open(binding).browserBindingHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(open().browserBindingHash).toBeUndefined();
    expect(() => sealState(keyring, { provider: "stripe", userId: "alice", nowMs: now, browserBinding: "short" })).toThrow(/binding/);
  });

  it("lets the bearer-less callback through only with the binding the state was begun with", () => {
    const bound = open(binding);
    expect(allows(bound, { browserBinding: binding, viaCallback: true })).toBe(true);
    expect(allows(bound, { viaCallback: true })).toBe(false);
    expect(allows(bound, { browserBinding: createBrowserBinding(), viaCallback: true })).toBe(false);
    expect(allows(bound, { browserBinding: `${binding}x`, viaCallback: true })).toBe(false);
    expect(allows(bound, { browserBinding: "", viaCallback: true })).toBe(false);
    // A state begun without a binding names no browser: the callback cannot complete it.
    expect(allows(open(), { viaCallback: true })).toBe(false);
    expect(allows(open(), { browserBinding: binding, viaCallback: true })).toBe(false);
  });

  it("lets a caller who names the user through without the binding, but never with another one", () => {
    expect(allows(open(binding), { userId: "alice", viaCallback: false })).toBe(true);
    expect(allows(open(), { userId: "alice", viaCallback: false })).toBe(true);
    expect(allows(open(binding), { userId: "alice", browserBinding: createBrowserBinding(), viaCallback: false })).toBe(false);
  });

  it("lets the SDK's server-side completeOAuth({code, state}) through only for a state begun without a binding", () => {
    expect(allows(open(), { viaCallback: false })).toBe(true);
    expect(allows(open(binding), { viaCallback: false })).toBe(false);
    expect(allows(open(binding), { browserBinding: binding, viaCallback: false })).toBe(true);
  });
});

describe("readAuthorizationResponse", () => {
  const input = { provider: "slack", displayName: "Slack", issuer: "https://slack.com" };
  const read = (query: string) => readAuthorizationResponse(new URLSearchParams(query), input);

  it("answers code and state", () => {
    expect(read("code=abc&state=slack_xyz")).toEqual({ code: "abc", state: "slack_xyz" });
  });

  it("passes a matching iss", () => {
    expect(read(`code=abc&state=s&iss=${encodeURIComponent("https://slack.com")}`)).toEqual({ code: "abc", state: "s" });
  });

  it("refuses an iss that is not the issuer (RFC 9207)", () => {
    const error = expectIntegrationError(() => read(`code=abc&state=s&iss=${encodeURIComponent("https://attacker.example")}`), {
      type: "auth",
      code: "issuer_mismatch",
    });
    expect(error.field).toBe("iss");
    expect(error.provider).toBe("slack");
  });

  it("turns error=access_denied into an auth error with code access_denied", () => {
    const error = expectIntegrationError(() => read("error=access_denied&state=s"), { type: "auth", code: "access_denied" });
    expect(error.message).toMatch(/declined/);
  });

  it("turns another error into an auth error carrying the provider's code", () => {
    expectIntegrationError(() => read("error=server_error&state=s"), { type: "auth", code: "server_error" });
  });

  // BUG (src/integrations/shared/oauth.ts:148,184): oauth4webapi's validateAuthResponse only
  // checks iss/state/error/response/id_token/token for repeats, so `code=a&code=b` passes
  // and the first code is used, although the docstring (and RFC 6749 §3.1) say a repeated
  // parameter is refused.
  it("refuses a duplicated code parameter", () => {
    expectIntegrationError(() => read("code=a&code=b&state=s"), { type: "schema", code: "invalid_input" });
  });

  it("refuses a duplicated state parameter", () => {
    expectIntegrationError(() => read("code=a&state=s1&state=s2"), { type: "schema", code: "invalid_input" });
  });

  it("refuses a response without a code", () => {
    const error = expectIntegrationError(() => read("state=s"), { type: "schema", code: "invalid_input" });
    expect(error.field).toBe("code");
  });

  it("refuses a response without a state", () => {
    const error = expectIntegrationError(() => read("code=abc"), { type: "schema", code: "invalid_input" });
    expect(error.field).toBe("state");
  });

  it("refuses an empty code", () => {
    expectIntegrationError(() => read("code=&state=s"), { type: "schema", code: "invalid_input" });
  });
});
