/**
 * The authorization server inside every sandbox: what it issued and what
 * became of it. Authorization codes (lifetime, single use, the redirect URI
 * and PKCE challenge they are bound to, and the grant a replayed code takes
 * down with it), grants (one user's consent to one app, which every token
 * minted from it shares), tokens of any kind a provider hands out (access and
 * refresh tokens, API keys, personal tokens) with their expiry, rotation with
 * a grace period, and revocation of one token, one grant or all of them.
 *
 * It decides and records; it never answers. Every outcome is a reason
 * (`unknown`, `expired`, `reused`, `verifier_mismatch`, ...) that the
 * sandbox turns into its provider's own error body, so a sandbox file holds
 * only what is particular to its provider: token shapes, what a grant holds,
 * which checks the provider makes and in what words it refuses.
 *
 * The state is plain data (Maps, arrays and records sharing references) kept
 * in the sandbox's persisted state, so a restart or another instance on the
 * same store sees the same codes and tokens.
 */
import { codeChallengeS256 } from "../integrations/shared/oauth.js";

/** Every provider but Stripe keeps codes for ten minutes (Stripe: five); none takes one twice. */
export const DEFAULT_CODE_TTL_MS = 10 * 60 * 1000;

export type PkceMethod = "S256" | "plain";
export type Pkce = { challenge: string; method: PkceMethod };

/** What a grant carries besides the sandbox's own fields. */
export type GrantStatus = {
  /** Why every token of the grant stopped working (`revoked`, `reuse`, `revoke-all`, or a provider's own word); live when absent. */
  revokedAs?: string;
};
export type Grant<G extends object = object> = G & GrantStatus;

export type IssuedToken<G extends object = object, K extends string = string> = {
  kind: K;
  grant: Grant<G>;
  /** Epoch milliseconds; never expires when absent. */
  expiresAt?: number;
  /** This token alone was revoked (its grant may live on). */
  revoked?: boolean;
  /** A rotating refresh token: when it was first exchanged, and when its grace period ends (it is dead from then). */
  spentAt?: number;
  retiresAt?: number;
  /** The refresh token whose exchange minted this one. */
  mintedBy?: string;
  /** This token's scopes, where narrower than its grant's (a refresh that asked for fewer). */
  scopes?: string[];
};

export type IssuedCode<G extends object = object, C = unknown> = {
  /** What the consent decided, for the exchange to grant (the sandbox's own fields). */
  data: C;
  /** The client the code was issued to, when the provider checks it at the exchange. */
  clientId?: string;
  /** The redirect URI the authorization request named: the exchange must name it again. Unbound when absent. */
  redirectUri?: string;
  pkce?: Pkce;
  expiresAt: number;
  used: boolean;
  /** The grants its exchange made: a replay revokes them (RFC 6749 §4.1.2, §10.5). */
  grants: Grant<G>[];
};

/** The persisted part: put it in the sandbox's state as it is. */
export type AuthorizationState<G extends object = object, K extends string = string, C = unknown> = {
  codes: Map<string, IssuedCode<G, C>>;
  tokens: Map<string, IssuedToken<G, K>>;
  grants: Grant<G>[];
};

export function authorizationState<G extends object = object, K extends string = string, C = unknown>(): AuthorizationState<G, K, C> {
  return { codes: new Map(), tokens: new Map(), grants: [] };
}

export type AuthorizationOptions = {
  /** How long a code may be exchanged (default ten minutes). */
  codeTtlMs?: number;
  /** The sandbox's clock (tests move it); Date.now by default. */
  now?: () => number;
};

/** What the exchange presents against the code. */
export type CodePresented = {
  clientId?: string;
  redirectUri?: string;
  verifier?: string;
};

/**
 * Why a code is refused, in the order the checks run: a code nobody issued
 * (or issued to another client), one already exchanged (its grants are then
 * revoked), one past its lifetime, a redirect URI left out or different from
 * the authorization request's, and PKCE: no verifier for a code with a
 * challenge, one that does not transform to it, or one sent for a code
 * issued without a challenge.
 */
export type CodeRefusal =
  | "unknown"
  | "client_mismatch"
  | "reused"
  | "expired"
  | "redirect_uri_missing"
  | "redirect_uri_mismatch"
  | "verifier_missing"
  | "verifier_mismatch"
  | "verifier_unexpected"
  | "provider_refused";

export type CodeOutcome<G extends object, C> =
  | { ok: true; code: IssuedCode<G, C> }
  /** `refusal`: the provider's own word, for `provider_refused`. */
  | { ok: false; reason: CodeRefusal; code?: IssuedCode<G, C>; refusal?: string };

/** What a provider checks of an exchange beyond the standard, and what a refusal does to the code. */
export type CodeChecks<G extends object, C> = {
  /** `always` (default): a bound code needs the same URI again; `when-sent`: only a URI sent is compared; `never`. */
  redirectUri?: "always" | "when-sent" | "never";
  /** `strict` (default): a verifier for a code without a challenge is refused; `when-challenged`: it is ignored. */
  verifier?: "strict" | "when-challenged";
  /** The provider deletes a code whose exchange it refused, so it cannot be tried again (default: a refusal leaves it). */
  spendOnRefusal?: boolean;
  /**
   * The provider's own last check, once every standard one passed and before the code is spent: a refusal
   * word (answered as `provider_refused` with that `refusal`), or undefined to let the exchange through.
   */
  last?: (code: IssuedCode<G, C>) => string | undefined;
};

/** Why a token is refused: none presented, never issued, another kind than the call takes, revoked (itself or its grant), expired. */
export type TokenRefusal = "missing" | "unknown" | "wrong_kind" | "revoked" | "expired";
export type TokenOutcome<G extends object, K extends string> =
  | { ok: true; value: string; token: IssuedToken<G, K> }
  | { ok: false; reason: TokenRefusal; token?: IssuedToken<G, K> };

/** A refresh token's exchange refused: as for any token, or `spent` (a rotated-away token presented after its grace period). */
export type RotationRefusal = TokenRefusal | "spent";
export type RotationOutcome<G extends object, K extends string> =
  | { ok: true; value: string; token: IssuedToken<G, K>; grant: Grant<G> }
  | { ok: false; reason: RotationRefusal; token?: IssuedToken<G, K> };

export type RotationPolicy = {
  /** How long a used refresh token keeps working (0: never again). */
  graceMs: number;
  /**
   * What presenting it after the grace period does besides failing: nothing
   * (default), revoke the whole grant (reuse detection, RFC 9700 §4.14.2), or
   * revoke the grant's tokens of the refresh token's kind, leaving its access
   * tokens to run out (Atlassian).
   */
  onReuse?: "refuse" | "revoke-grant" | "revoke-refresh";
  /** The access tokens the spent one minted die with it once its grace ends (Slack, Atlassian). Default false. */
  retireMinted?: boolean;
};

/** A challenge an authorization request carries, checked as RFC 7636 §4.3 says; `unsupported_method` names a method the provider does not take. */
export type ChallengeOutcome = { ok: true; pkce?: Pkce } | { ok: false; reason: "challenge_malformed" | "unsupported_method" | "method_without_challenge" };

/** RFC 7636 §4.1: 43 to 128 unreserved characters (the same alphabet and bounds hold for a challenge). */
const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/**
 * The authorization server's PKCE check (RFC 7636 §4.6): `verifier` is well
 * formed and transforms to `challenge` by `method`.
 */
export function verifierMatches(verifier: string | undefined, challenge: string, method: PkceMethod | string = "S256"): boolean {
  if (verifier === undefined || !PKCE_VERIFIER.test(verifier)) return false;
  return (method === "S256" ? codeChallengeS256(verifier) : verifier) === challenge;
}

/**
 * The PKCE part of an authorization request. `methods` are those the
 * provider takes, the first being what a challenge without a method means
 * (RFC 7636 says `plain`; most providers assume or demand S256). A parameter
 * sent empty is sent: an empty challenge is malformed, an empty method unsupported.
 */
export function pkceOf(challenge: string | undefined, method: string | undefined, methods: readonly PkceMethod[] = ["S256", "plain"]): ChallengeOutcome {
  if (challenge === undefined) return method === undefined ? { ok: true } : { ok: false, reason: "method_without_challenge" };
  const chosen = method === undefined ? methods[0] : method;
  if (chosen !== "S256" && chosen !== "plain") return { ok: false, reason: "unsupported_method" };
  if (!methods.includes(chosen)) return { ok: false, reason: "unsupported_method" };
  if (!PKCE_VERIFIER.test(challenge)) return { ok: false, reason: "challenge_malformed" };
  return { ok: true, pkce: { challenge, method: chosen } };
}

export type AuthorizationServer<G extends object, K extends string, C> = ReturnType<typeof authorizationServer<G, K, C>>;

export function authorizationServer<G extends object = object, K extends string = string, C = unknown>(
  state: AuthorizationState<G, K, C>,
  options: AuthorizationOptions = {},
) {
  // Read at each call, so that a test's fake clock (which replaces Date.now) moves codes and tokens too.
  const now = options.now ?? (() => Date.now());
  const codeTtlMs = options.codeTtlMs ?? DEFAULT_CODE_TTL_MS;
  const { codes, tokens, grants } = state;

  const revokeGrant = (grant: Grant<G>, reason = "revoked"): void => {
    grant.revokedAs ??= reason;
  };
  const retired = (token: IssuedToken<G, K>): boolean => token.revoked === true || (token.retiresAt !== undefined && now() >= token.retiresAt);
  const isLive = (token: IssuedToken<G, K>): boolean => !retired(token) && token.grant.revokedAs === undefined && (token.expiresAt === undefined || now() < token.expiresAt);

  /** The standard checks of a code's exchange, in the order of {@link CodeRefusal}; a replay revokes the code's grants. */
  const check = (code: IssuedCode<G, C>, presented: CodePresented, checks: CodeChecks<G, C>): CodeOutcome<G, C> => {
    if (code.clientId !== undefined && presented.clientId !== undefined && presented.clientId !== code.clientId) return { ok: false, reason: "client_mismatch", code };
    if (code.used) {
      for (const grant of code.grants) revokeGrant(grant, "reuse");
      return { ok: false, reason: "reused", code };
    }
    if (now() >= code.expiresAt) return { ok: false, reason: "expired", code };
    const redirectCheck = checks.redirectUri ?? "always";
    if (code.redirectUri !== undefined && redirectCheck !== "never" && !(redirectCheck === "when-sent" && presented.redirectUri === undefined)) {
      if (presented.redirectUri === undefined) return { ok: false, reason: "redirect_uri_missing", code };
      if (presented.redirectUri !== code.redirectUri) return { ok: false, reason: "redirect_uri_mismatch", code };
    }
    if (code.pkce) {
      if (presented.verifier === undefined || presented.verifier === "") return { ok: false, reason: "verifier_missing", code };
      if (!verifierMatches(presented.verifier, code.pkce.challenge, code.pkce.method)) return { ok: false, reason: "verifier_mismatch", code };
    } else if (presented.verifier !== undefined && (checks.verifier ?? "strict") === "strict") {
      return { ok: false, reason: "verifier_unexpected", code };
    }
    const refusal = checks.last?.(code);
    if (refusal !== undefined) return { ok: false, reason: "provider_refused", code, refusal };
    return { ok: true, code };
  };

  const server = {
    now,

    /** Records a new grant (a consent, an installed app, a key's owner). */
    grant(data: G): Grant<G> {
      const grant = data as Grant<G>;
      grants.push(grant);
      return grant;
    },

    /**
     * Records `value` as a code of `data`, bound to what the authorization request named. `grant`: a grant
     * the consent itself made (where a revoke-all between consent and exchange must cover it), which a
     * replay of the code revokes as it does those its exchange makes.
     */
    issueCode(value: string, data: C, binding: { clientId?: string; redirectUri?: string; pkce?: Pkce | undefined; grant?: Grant<G> } = {}): IssuedCode<G, C> {
      const code: IssuedCode<G, C> = {
        data,
        ...(binding.clientId !== undefined ? { clientId: binding.clientId } : {}),
        ...(binding.redirectUri !== undefined ? { redirectUri: binding.redirectUri } : {}),
        ...(binding.pkce ? { pkce: binding.pkce } : {}),
        expiresAt: now() + codeTtlMs,
        used: false,
        grants: binding.grant ? [binding.grant] : [],
      };
      codes.set(value, code);
      return code;
    },

    /**
     * Checks a code against what its exchange presents, in the order of
     * {@link CodeRefusal}, and spends it when it passes. A replayed code
     * revokes the grants it made, whatever else is wrong. `checks` leaves
     * out what the provider does not check: a redirect URI the exchange
     * may omit (`redirectUri: "when-sent"`), or none at all.
     */
    redeemCode(value: string | undefined, presented: CodePresented, checks: CodeChecks<G, C> = {}): CodeOutcome<G, C> {
      const code = value ? codes.get(value) : undefined;
      if (!code) return { ok: false, reason: "unknown" };
      const outcome = check(code, presented, checks);
      if (outcome.ok) code.used = true;
      else if (checks.spendOnRefusal && value && outcome.reason !== "reused") codes.delete(value);
      return outcome;
    },

    /** Ties a grant to the code whose exchange made it, so that a replay of the code revokes it. */
    grantFromCode(code: IssuedCode<G, C>, data: G): Grant<G> {
      const grant = server.grant(data);
      code.grants.push(grant);
      return grant;
    },

    /** Records `value` as a token of `kind` on `grant`, expiring after `ttlMs` when given. */
    mint(value: string, kind: K, grant: Grant<G>, ttlMs?: number, mintedBy?: string): IssuedToken<G, K> {
      const token: IssuedToken<G, K> = { kind, grant, ...(ttlMs !== undefined ? { expiresAt: now() + ttlMs } : {}), ...(mintedBy !== undefined ? { mintedBy } : {}) };
      tokens.set(value, token);
      return token;
    },

    /** The token as issued, live or not (for introspection answers). */
    find(value: string | undefined): IssuedToken<G, K> | undefined {
      return value ? tokens.get(value) : undefined;
    },

    /** A presented token that works, of one of `kinds` (any kind when left out), or why it does not. */
    verify(value: string | undefined, kinds?: readonly K[]): TokenOutcome<G, K> {
      if (value === undefined || value === "") return { ok: false, reason: "missing" };
      const token = tokens.get(value);
      if (!token) return { ok: false, reason: "unknown" };
      if (kinds && !kinds.includes(token.kind)) return { ok: false, reason: "wrong_kind", token };
      if (retired(token) || token.grant.revokedAs !== undefined) return { ok: false, reason: "revoked", token };
      if (token.expiresAt !== undefined && now() >= token.expiresAt) return { ok: false, reason: "expired", token };
      return { ok: true, value, token };
    },

    /**
     * Exchanges a rotating refresh token: the first exchange spends it, and
     * it keeps working for the policy's grace period; after that it is
     * refused as `spent`, and per the policy the grant (reuse) or the access
     * tokens it minted go too. The sandbox mints the new pair on the grant.
     */
    rotate(value: string | undefined, kind: K, policy: RotationPolicy): RotationOutcome<G, K> {
      const presented = value ? tokens.get(value) : undefined;
      // A spent token presented after its grace is a reuse, whatever else became of it since.
      if (value && presented?.kind === kind && presented.spentAt !== undefined && !presented.revoked && now() >= presented.spentAt + policy.graceMs) {
        server.retire(value, policy);
        if (policy.onReuse === "revoke-grant") revokeGrant(presented.grant, "reuse");
        if (policy.onReuse === "revoke-refresh") for (const other of tokens.values()) if (other.grant === presented.grant && other.kind === kind) other.revoked = true;
        return { ok: false, reason: "spent", token: presented };
      }
      const checked = server.verify(value, [kind]);
      if (!checked.ok) return checked;
      const { token } = checked;
      if (token.spentAt === undefined) {
        token.spentAt = now();
        // From the end of its grace it is dead to every check, not only to the next exchange.
        token.retiresAt = token.spentAt + policy.graceMs;
      }
      return { ok: true, value: checked.value, token, grant: token.grant };
    },

    /** Ends a spent refresh token (and, per the policy, what it minted): used when its grace is over. */
    retire(value: string, policy: Pick<RotationPolicy, "retireMinted">): void {
      const token = tokens.get(value);
      if (!token) return;
      token.revoked = true;
      if (policy.retireMinted) for (const minted of tokens.values()) if (minted.mintedBy === value) minted.revoked = true;
    },

    /** Revokes one token; its grant and the grant's other tokens live on. False when there was no such token. */
    revokeToken(value: string | undefined): boolean {
      const token = value ? tokens.get(value) : undefined;
      if (!token) return false;
      token.revoked = true;
      return true;
    },

    /** Revokes a grant: every token minted on it stops working. The first reason given is kept. */
    revokeGrant,

    /** Every token `which` selects, with its value. */
    tokensWhere(which: (token: IssuedToken<G, K>, value: string) => boolean): Array<{ value: string; token: IssuedToken<G, K> }> {
      const out: Array<{ value: string; token: IssuedToken<G, K> }> = [];
      for (const [value, token] of tokens) if (which(token, value)) out.push({ value, token });
      return out;
    },

    /** Revokes every token `which` selects, one by one. */
    revokeTokensWhere(which: (token: IssuedToken<G, K>, value: string) => boolean): void {
      for (const [value, token] of tokens) if (which(token, value)) token.revoked = true;
    },

    /**
     * The `revoke-all` fault: every grant (those `spare` picks excepted) stops working, as a password reset or
     * an admin's "sign out everywhere" does, and codes not yet exchanged are void (they are credentials too).
     */
    revokeAll(reason = "revoke-all", spare?: (grant: Grant<G>) => boolean): void {
      for (const grant of grants) if (!spare?.(grant)) revokeGrant(grant, reason);
      for (const [value, code] of codes) if (!code.used) codes.delete(value);
    },

    /** The grants recorded (live or not), oldest first. */
    grants(): readonly Grant<G>[] {
      return grants;
    },

    /** Whether a token works now: not revoked, its grant not revoked, not expired. */
    isLive,

    /** Whether a token is past its expiry, whatever else became of it (some providers answer that first). */
    isExpired(token: IssuedToken<G, K>): boolean {
      return token.expiresAt !== undefined && now() >= token.expiresAt;
    },

    /** Seconds left to a token, rounded down (0 once expired); undefined for one that never expires. */
    secondsLeft(token: IssuedToken<G, K>): number | undefined {
      return token.expiresAt === undefined ? undefined : Math.max(0, Math.floor((token.expiresAt - now()) / 1000));
    },
  };
  return server;
}
