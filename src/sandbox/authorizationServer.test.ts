import { createHash } from "node:crypto";
import * as devalue from "devalue";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { codeChallengeS256 } from "../integrations/shared/oauth.js";
import { authorizationServer, authorizationState, DEFAULT_CODE_TTL_MS, pkceOf, verifierMatches, type AuthorizationState } from "./authorizationServer.js";

type G = { user: string; scopes: string[] };
type K = "access" | "refresh" | "api_key";

function setup(codeTtlMs?: number) {
  const clock = { at: 1_700_000_000_000 };
  const state = authorizationState<G, K, { scopes: string[] }>();
  const auth = authorizationServer(state, { now: () => clock.at, ...(codeTtlMs !== undefined ? { codeTtlMs } : {}) });
  return { clock, state, auth };
}
const VERIFIER = "v".repeat(43);

describe("the sandbox authorization server: codes", () => {
  it("spends a code once, bound to its redirect URI, and a replay revokes the grant it made", () => {
    const { auth } = setup();
    auth.issueCode("c1", { scopes: ["read"] }, { redirectUri: "http://127.0.0.1/cb" });
    const first = auth.redeemCode("c1", { redirectUri: "http://127.0.0.1/cb" });
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    const grant = auth.grantFromCode(first.code, { user: "u1", scopes: first.code.data.scopes });
    auth.mint("at1", "access", grant, 3_600_000);
    expect(auth.verify("at1").ok).toBe(true);
    expect(auth.redeemCode("c1", { redirectUri: "http://127.0.0.1/cb" })).toMatchObject({ ok: false, reason: "reused" });
    expect(auth.verify("at1")).toMatchObject({ ok: false, reason: "revoked" });
    expect(grant.revokedAs).toBe("reuse");
  });

  it("refuses in order: unknown, another client, reused, expired, redirect URI missing or different", () => {
    const { auth, clock } = setup();
    expect(auth.redeemCode(undefined, {})).toEqual({ ok: false, reason: "unknown" });
    expect(auth.redeemCode("nope", {})).toEqual({ ok: false, reason: "unknown" });
    auth.issueCode("c", { scopes: [] }, { clientId: "app", redirectUri: "http://127.0.0.1/cb" });
    expect(auth.redeemCode("c", { clientId: "other" })).toMatchObject({ reason: "client_mismatch" });
    expect(auth.redeemCode("c", { clientId: "app" })).toMatchObject({ reason: "redirect_uri_missing" });
    expect(auth.redeemCode("c", { redirectUri: "http://127.0.0.1/other" })).toMatchObject({ reason: "redirect_uri_mismatch" });
    // A refused exchange does not spend the code.
    expect(auth.redeemCode("c", { redirectUri: "http://127.0.0.1/cb" }).ok).toBe(true);
    auth.issueCode("late", { scopes: [] });
    clock.at += DEFAULT_CODE_TTL_MS;
    expect(auth.redeemCode("late", {})).toMatchObject({ reason: "expired" });
  });

  it("keeps a code for the lifetime it is given", () => {
    const { auth, clock } = setup(5 * 60 * 1000);
    auth.issueCode("c", { scopes: [] });
    clock.at += 5 * 60 * 1000 - 1;
    expect(auth.redeemCode("c", {}).ok).toBe(true);
    auth.issueCode("d", { scopes: [] });
    clock.at += 5 * 60 * 1000;
    expect(auth.redeemCode("d", {})).toMatchObject({ reason: "expired" });
  });

  it("checks a redirect URI only when sent, or never, when the provider says so", () => {
    const { auth } = setup();
    auth.issueCode("a", { scopes: [] }, { redirectUri: "http://127.0.0.1/cb" });
    expect(auth.redeemCode("a", {}, { redirectUri: "when-sent" }).ok).toBe(true);
    auth.issueCode("b", { scopes: [] }, { redirectUri: "http://127.0.0.1/cb" });
    expect(auth.redeemCode("b", { redirectUri: "http://127.0.0.1/x" }, { redirectUri: "when-sent" })).toMatchObject({ reason: "redirect_uri_mismatch" });
    expect(auth.redeemCode("b", { redirectUri: "http://127.0.0.1/x" }, { redirectUri: "never" }).ok).toBe(true);
  });

  it("checks PKCE: missing, wrong, plain, or sent for a code without a challenge", () => {
    const { auth } = setup();
    auth.issueCode("s", { scopes: [] }, { pkce: { challenge: codeChallengeS256(VERIFIER), method: "S256" } });
    expect(auth.redeemCode("s", {})).toMatchObject({ reason: "verifier_missing" });
    expect(auth.redeemCode("s", { verifier: "w".repeat(43) })).toMatchObject({ reason: "verifier_mismatch" });
    expect(auth.redeemCode("s", { verifier: VERIFIER }).ok).toBe(true);
    auth.issueCode("p", { scopes: [] }, { pkce: { challenge: VERIFIER, method: "plain" } });
    expect(auth.redeemCode("p", { verifier: VERIFIER }).ok).toBe(true);
    auth.issueCode("n", { scopes: [] });
    expect(auth.redeemCode("n", { verifier: VERIFIER })).toMatchObject({ reason: "verifier_unexpected" });
  });

  it("reads an authorization request's challenge as RFC 7636 says, with the provider's methods", () => {
    const challenge = codeChallengeS256(VERIFIER);
    expect(pkceOf(undefined, undefined)).toEqual({ ok: true });
    expect(pkceOf(undefined, "S256")).toEqual({ ok: false, reason: "method_without_challenge" });
    expect(pkceOf(challenge, undefined, ["S256"])).toEqual({ ok: true, pkce: { challenge, method: "S256" } });
    expect(pkceOf(challenge, undefined, ["plain", "S256"])).toEqual({ ok: true, pkce: { challenge, method: "plain" } });
    expect(pkceOf(challenge, "plain", ["S256"])).toEqual({ ok: false, reason: "unsupported_method" });
    expect(pkceOf(challenge, "S512")).toEqual({ ok: false, reason: "unsupported_method" });
    expect(pkceOf("short", "S256")).toEqual({ ok: false, reason: "challenge_malformed" });
    // Sent empty is sent.
    expect(pkceOf("", undefined)).toEqual({ ok: false, reason: "challenge_malformed" });
    expect(pkceOf(challenge, "")).toEqual({ ok: false, reason: "unsupported_method" });
    expect(pkceOf(undefined, "")).toEqual({ ok: false, reason: "method_without_challenge" });
  });

  it("takes a verifier only when it is well formed and transforms to the challenge", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9\-._~]{43,128}$/), (verifier) => {
        expect(verifierMatches(verifier, codeChallengeS256(verifier), "S256")).toBe(true);
        expect(verifierMatches(verifier, verifier, "plain")).toBe(true);
        expect(verifierMatches(`${verifier}!`, createHash("sha256").update(`${verifier}!`).digest("base64url"), "S256")).toBe(false);
        expect(verifierMatches(verifier, codeChallengeS256(`${verifier}x`), "S256")).toBe(false);
      }),
    );
  });
});

describe("the sandbox authorization server: tokens", () => {
  it("verifies kind, revocation and expiry", () => {
    const { auth, clock } = setup();
    const grant = auth.grant({ user: "u1", scopes: [] });
    auth.mint("at", "access", grant, 1000);
    auth.mint("rt", "refresh", grant);
    expect(auth.verify(undefined)).toEqual({ ok: false, reason: "missing" });
    expect(auth.verify("x")).toEqual({ ok: false, reason: "unknown" });
    expect(auth.verify("rt", ["access"])).toMatchObject({ ok: false, reason: "wrong_kind" });
    expect(auth.verify("at", ["access"])).toMatchObject({ ok: true, value: "at" });
    expect(auth.secondsLeft(auth.find("at")!)).toBe(1);
    clock.at += 1000;
    expect(auth.verify("at")).toMatchObject({ ok: false, reason: "expired" });
    expect(auth.secondsLeft(auth.find("at")!)).toBe(0);
    expect(auth.verify("rt").ok).toBe(true);
    expect(auth.revokeToken("rt")).toBe(true);
    expect(auth.revokeToken("nope")).toBe(false);
    expect(auth.verify("rt")).toMatchObject({ ok: false, reason: "revoked" });
  });

  it("rotates a refresh token: it works through the grace period, then is spent", () => {
    const { auth, clock } = setup();
    const grant = auth.grant({ user: "u1", scopes: [] });
    auth.mint("rt1", "refresh", grant);
    const first = auth.rotate("rt1", "refresh", { graceMs: 10_000, retireMinted: true });
    expect(first.ok).toBe(true);
    auth.mint("at2", "access", grant, 3_600_000, "rt1");
    clock.at += 9_999;
    expect(auth.rotate("rt1", "refresh", { graceMs: 10_000, retireMinted: true }).ok).toBe(true);
    clock.at += 1;
    expect(auth.rotate("rt1", "refresh", { graceMs: 10_000, retireMinted: true })).toMatchObject({ ok: false, reason: "spent" });
    // What the spent token minted ends with it; the grant lives on.
    expect(auth.verify("at2")).toMatchObject({ reason: "revoked" });
    expect(grant.revokedAs).toBeUndefined();
    expect(auth.rotate("rt1", "refresh", { graceMs: 10_000 })).toMatchObject({ ok: false, reason: "revoked" });
  });

  it("with no grace a refresh token works once; reuse detection revokes the grant", () => {
    const { auth } = setup();
    const grant = auth.grant({ user: "u1", scopes: [] });
    auth.mint("rt1", "refresh", grant);
    auth.mint("rt2", "refresh", grant);
    expect(auth.rotate("rt1", "refresh", { graceMs: 0, onReuse: "revoke-grant" }).ok).toBe(true);
    expect(auth.rotate("rt1", "refresh", { graceMs: 0, onReuse: "revoke-grant" })).toMatchObject({ reason: "spent" });
    expect(grant.revokedAs).toBe("reuse");
    expect(auth.verify("rt2")).toMatchObject({ reason: "revoked" });
    expect(auth.rotate("nope", "refresh", { graceMs: 0 })).toMatchObject({ reason: "unknown" });
  });

  it("with no grace a spent refresh token is dead to every check at once; Atlassian's reuse ends the chain's refresh tokens only", () => {
    const { auth } = setup();
    const grant = auth.grant({ user: "u1", scopes: [] });
    auth.mint("rt1", "refresh", grant);
    auth.mint("rt0", "refresh", grant);
    auth.mint("at1", "access", grant, 60_000);
    expect(auth.rotate("rt1", "refresh", { graceMs: 0 }).ok).toBe(true);
    expect(auth.verify("rt1")).toMatchObject({ ok: false, reason: "revoked" });
    expect(auth.rotate("rt1", "refresh", { graceMs: 0, onReuse: "revoke-refresh" })).toMatchObject({ ok: false, reason: "spent" });
    expect(auth.verify("rt0")).toMatchObject({ reason: "revoked" });
    expect(auth.verify("at1").ok).toBe(true);
    expect(auth.isExpired(auth.find("at1")!)).toBe(false);
  });

  it("takes the provider's options at the exchange: a verifier ignored without a challenge, a refusal that burns the code, a last check of its own", () => {
    const { auth } = setup();
    auth.issueCode("a", { scopes: [] });
    expect(auth.redeemCode("a", { verifier: VERIFIER }, { verifier: "when-challenged" }).ok).toBe(true);
    auth.issueCode("b", { scopes: [] }, { redirectUri: "http://127.0.0.1/cb" });
    expect(auth.redeemCode("b", { redirectUri: "http://127.0.0.1/x" }, { spendOnRefusal: true })).toMatchObject({ reason: "redirect_uri_mismatch" });
    expect(auth.redeemCode("b", { redirectUri: "http://127.0.0.1/cb" })).toMatchObject({ reason: "unknown" });
    auth.issueCode("c", { scopes: ["x"] });
    const noSecret = (code: { data: { scopes: string[] } }) => (code.data.scopes.includes("x") ? "bad_client_secret" : undefined);
    expect(auth.redeemCode("c", {}, { last: noSecret })).toMatchObject({ ok: false, reason: "provider_refused", refusal: "bad_client_secret" });
    // The provider's own refusal leaves the code unspent.
    expect(auth.redeemCode("c", {}).ok).toBe(true);
  });

  it("voids codes not yet exchanged on revoke-all", () => {
    const { auth } = setup();
    auth.issueCode("pending", { scopes: [] });
    auth.revokeAll();
    expect(auth.redeemCode("pending", {})).toMatchObject({ reason: "unknown" });
  });

  it("revokes a grant's tokens together, every grant but those spared, and tokens by a filter", () => {
    const { auth } = setup();
    const a = auth.grant({ user: "a", scopes: [] });
    const b = auth.grant({ user: "b", scopes: [] });
    const platform = auth.grant({ user: "platform", scopes: [] });
    auth.mint("a1", "access", a);
    auth.mint("a2", "refresh", a);
    auth.mint("b1", "api_key", b);
    auth.mint("p1", "api_key", platform);
    auth.revokeGrant(a);
    expect(auth.verify("a2")).toMatchObject({ reason: "revoked" });
    expect(auth.verify("b1").ok).toBe(true);
    auth.revokeTokensWhere((t) => t.grant.user === "b");
    expect(auth.verify("b1")).toMatchObject({ reason: "revoked" });
    auth.revokeAll("revoke-all", (g) => g.user === "platform");
    expect(a.revokedAs).toBe("revoked");
    expect(platform.revokedAs).toBeUndefined();
    expect(auth.tokensWhere((t) => auth.isLive(t)).map((t) => t.value)).toEqual(["p1"]);
    expect(auth.grants()).toHaveLength(3);
  });

  it("keeps what it issued through a devalue snapshot, shared grants included", () => {
    const { auth, state, clock } = setup();
    auth.issueCode("c", { scopes: ["read"] }, { redirectUri: "http://127.0.0.1/cb" });
    const redeemed = auth.redeemCode("c", { redirectUri: "http://127.0.0.1/cb" });
    if (!redeemed.ok) throw new Error("not redeemed");
    const grant = auth.grantFromCode(redeemed.code, { user: "u", scopes: ["read"] });
    auth.mint("at", "access", grant, 60_000);
    auth.mint("rt", "refresh", grant);
    const restored = devalue.parse(devalue.stringify(state)) as AuthorizationState<G, K, { scopes: string[] }>;
    const again = authorizationServer(restored, { now: () => clock.at });
    expect(again.verify("at").ok).toBe(true);
    // The replay of the restored code still reaches the restored tokens: one grant object, shared.
    expect(again.redeemCode("c", { redirectUri: "http://127.0.0.1/cb" })).toMatchObject({ reason: "reused" });
    expect(again.verify("rt")).toMatchObject({ reason: "revoked" });
  });
});
