/**
 * The provider HTTP client: one place that sends a request to a provider,
 * bounds it with a timeout, refuses to follow redirects (a token is never
 * sent to an address the provider did not publish), classifies the answer
 * into the five error types with the connector's table, and retries within
 * the connector's budget.
 */
import type { Dispatcher } from "undici";
import { dispatcherExchange, fetchExchange, type Exchange, type ExchangeAnswer } from "./exchange.js";
import { ErrorCodes, IntegrationError, type IntegrationErrorInit } from "./errors.js";
import { maskSecret } from "./mask.js";
import type { RateLimitReader, RateSignal } from "./rateSignal.js";
import { decideRetry, MIN_RETRY_ATTEMPT_MS, parseRetryAfter, type RetryPolicy } from "./retry.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export type ProviderRequest = {
  /** A short name for logs and messages: `auth.test`, `GET /v1/account`. */
  operation: string;
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  /** Sent as application/x-www-form-urlencoded; undefined values are left out. */
  form?: Record<string, string | undefined>;
  /** Sent as application/json. */
  json?: unknown;
  /** Sent as given, with the content-type of `headers` (a proxied call). */
  body?: string | Uint8Array;
  /** The largest answer read; a longer one fails with `response_too_large` (the proxy's bound). */
  maxResponseBytes?: number;
  /** The provider account whose rate budget this call spends (paced when the client has a pacer); unpaced when left out. */
  paceKey?: string;
  /** A redirect (3xx, 304) is an answer to hand back, not a failure; it is still never followed. The proxy's. */
  passRedirects?: boolean;
  /** Safe to repeat. Defaults to true for GET, PUT and DELETE, false otherwise. */
  idempotent?: boolean;
  /** Secrets in this request (token, client secret, code): scrubbed from every error message. */
  secrets?: readonly (string | undefined)[];
  /** False when a successful answer may have an empty or non-JSON body. */
  expectJson?: boolean;
};

export type ProviderResponse = {
  status: number;
  headers: Headers;
  /** The body as it came (set on every answer ProviderHttp reads). */
  bytes?: Uint8Array;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: unknown;
};

/** The provider's answer an error was made of, and the operation it answered (the proxy hands back only its own call's, as given). */
const answers = new WeakMap<IntegrationError, { response: ProviderResponse; operation: string }>();
export function answerOf(error: IntegrationError): ProviderResponse | undefined {
  return answers.get(error)?.response;
}
/** The operation whose answer `error` was made of. */
export function answeredOperation(error: IntegrationError): string | undefined {
  return answers.get(error)?.operation;
}


/** A connector's verdict on a response: null when it is a success. */
export type ErrorVerdict = Omit<IntegrationErrorInit, "provider" | "cause">;
export type ResponseClassifier = (response: ProviderResponse, request: ProviderRequest) => ErrorVerdict | null;

export type Clock = {
  now(): number;
  sleep(ms: number): Promise<void>;
};

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** One attempt as it happened, for logs and metrics. */
export type AttemptRecord = {
  provider: string;
  operation: string;
  method: HttpMethod;
  attempt: number;
  durationMs: number;
  /** How long this attempt was given: the provider timeout, or what was left of the budget when less. */
  timeoutMs: number;
  status?: number;
  errorType?: IntegrationError["type"];
  retryDelayMs?: number;
};

export type ProviderHttpOptions = {
  provider: string;
  displayName: string;
  classify: ResponseClassifier;
  policy: RetryPolicy;
  timeoutMs: number;
  clock?: Clock;
  /** Calls go through this fetch when given (tests, a caller's own transport)... */
  fetch?: typeof fetch;
  /** ...or else with undici's `request` over this dispatcher (keep-alive pools; undici's global one when unset). */
  dispatcher?: Dispatcher;
  onAttempt?: (record: AttemptRecord) => void;
  random?: () => number;
  /** Waits each attempt its turn in the account's rate budget, and learns from every answer's headers. */
  pacer?: ProviderPacer;
  /** The request header (lower case) by which this provider makes a repeated non-idempotent call safe (Stripe's `idempotency-key`); none when unset. */
  idempotencyKeyHeader?: string;
  /** The connector's reader of its provider's rate-limit headers, for the pacer. */
  rateLimit?: RateLimitReader;
  /**
   * The only origins this client may send to. A credential obtained for one
   * base URL must never reach another, so a request elsewhere is refused
   * before it leaves. Unset: no restriction (tests).
   */
  allowedOrigins?: readonly string[];
};

/** What ProviderHttp needs of the pacer (shared/pacing.ts): a turn before each attempt, and what each answer told. */
export type ProviderPacer = {
  /** Resolves when the account's budget allows a call; rejects with a rate-limit IntegrationError when that would be after `deadlineMs`. */
  acquire(key: string, deadlineMs: number): Promise<void>;
  /**
   * True when a call may be sent now without waiting (its turn is then taken, as `acquire` would take it),
   * false when it must `acquire`; unset: always `acquire`.
   */
  tryAcquire?(key: string): boolean;
  observe(key: string, signal: RateSignal): void;
};

/** Transport error codes seen on Node's fetch (undici) and their plain meaning. */
const TRANSPORT_CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  EPIPE: "connection closed",
  ENOTFOUND: "host name did not resolve",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  UND_ERR_SOCKET: "connection closed by the provider",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "timed out waiting for headers",
  UND_ERR_BODY_TIMEOUT: "timed out reading the body",
  UND_ERR_CLOSED: "connection closed",
};

/** One decoder for every answer: without `stream`, each decode stands alone. */
const UTF8 = new TextDecoder();

export class ProviderHttp {
  private readonly clock: Clock;
  private readonly exchange: Exchange;

  constructor(private readonly options: ProviderHttpOptions) {
    this.clock = options.clock ?? systemClock;
    this.exchange = options.fetch ? fetchExchange(options.fetch) : dispatcherExchange(options.dispatcher);
  }

  /** The provider id this client calls. */
  get provider(): string {
    return this.options.provider;
  }

  /** The same client making a single attempt per call: a health probe reports what it sees. */
  withoutRetries(): ProviderHttp {
    return new ProviderHttp({ ...this.options, policy: { ...this.options.policy, attempts: 1 } });
  }

  /** The same client, bound to other origins and (for user-supplied base URLs) another transport: a fetch, or a dispatcher to make requests over. */
  boundTo(allowedOrigins: readonly string[], transport?: typeof fetch | { dispatcher: Dispatcher }): ProviderHttp {
    if (transport === undefined) return new ProviderHttp({ ...this.options, allowedOrigins });
    const { fetch: _fetch, dispatcher: _dispatcher, ...rest } = this.options;
    return new ProviderHttp({ ...rest, allowedOrigins, ...(typeof transport === "function" ? { fetch: transport } : { dispatcher: transport.dispatcher }) });
  }

  /**
   * Sends `request`, retrying retryable failures within the policy. Resolves
   * with a successful response or rejects with an {@link IntegrationError}.
   */
  async send(request: ProviderRequest): Promise<ProviderResponse> {
    const started = this.clock.now();
    const { policy, timeoutMs } = this.options;
    const idempotent = request.idempotent ?? ["GET", "PUT", "DELETE"].includes(request.method);
    // A key makes a repeat safe only at a provider that honours it (Stripe replays the first answer); elsewhere it is just a header.
    const keyHeader = this.options.idempotencyKeyHeader;
    const hasIdempotencyKey = keyHeader !== undefined && Object.keys(request.headers ?? {}).some((h) => h.toLowerCase() === keyHeader);
    for (let attempt = 1; ; attempt++) {
      // A wait for the rate budget leaves the attempt after it the time any attempt is given at least.
      // Most calls' turn is granted at once, without a promise (pacer.tryAcquire).
      const paced = this.pace(request, started + policy.budgetMs - Math.min(timeoutMs, MIN_RETRY_ATTEMPT_MS));
      if (paced) await paced;
      const attemptStarted = this.clock.now();
      // The budget is the whole call's: an attempt gets the provider timeout or what is left of it.
      const attemptTimeoutMs = Math.max(1, Math.min(timeoutMs, started + policy.budgetMs - attemptStarted));
      const outcome = await this.attemptOnce(request, attemptTimeoutMs);
      const record: AttemptRecord = {
        provider: this.options.provider,
        operation: request.operation,
        method: request.method,
        attempt,
        durationMs: this.clock.now() - attemptStarted,
        timeoutMs: attemptTimeoutMs,
        ...(outcome.response ? { status: outcome.response.status } : {}),
      };
      if (!outcome.error) {
        this.options.onAttempt?.(record);
        return outcome.response as ProviderResponse;
      }
      const error = outcome.error;
      record.errorType = error.type;
      const decision = decideRetry({
        error,
        attempt,
        elapsedMs: this.clock.now() - started,
        policy,
        request: { idempotent, hasIdempotencyKey },
        minAttemptMs: Math.min(timeoutMs, MIN_RETRY_ATTEMPT_MS),
        ...(this.options.random ? { random: this.options.random } : {}),
      });
      if (decision.retry) record.retryDelayMs = decision.delayMs;
      this.options.onAttempt?.(record);
      if (!decision.retry) throw error;
      await this.clock.sleep(decision.delayMs);
    }
  }

  /** Takes the call's turn in the account's rate budget: undefined when it is granted at once, else the wait. */
  private pace(request: ProviderRequest, deadlineMs: number): Promise<void> | undefined {
    const { pacer } = this.options;
    if (!pacer || request.paceKey === undefined || pacer.tryAcquire?.(request.paceKey)) return undefined;
    return this.waitForTurn(pacer, request.paceKey, request, deadlineMs);
  }

  /** Waits for the account's rate budget; a wait past the call's budget is this call's answer: a 429 with Retry-After, nothing sent. */
  private async waitForTurn(pacer: ProviderPacer, paceKey: string, request: ProviderRequest, deadlineMs: number): Promise<void> {
    try {
      await pacer.acquire(paceKey, deadlineMs);
    } catch (error) {
      if (!(error instanceof IntegrationError)) throw error;
      const seconds = Math.max(1, error.retryAfterSeconds ?? 1);
      throw this.error(request, {
        type: "rate-limit",
        code: error.code ?? ErrorCodes.PACING_TIMEOUT,
        retryAfterSeconds: seconds,
        providerRetryHint: false,
        message: `${this.options.displayName}'s rate budget for this account frees up in ${seconds} s, past this call's ${this.options.policy.budgetMs} ms budget; ${request.operation} was not sent`,
        cause: error,
      });
    }
  }

  private async attemptOnce(request: ProviderRequest, timeoutMs: number): Promise<{ response?: ProviderResponse; error?: IntegrationError }> {
    const origin = originOf(request.url);
    if (this.options.allowedOrigins && (origin === undefined || !this.options.allowedOrigins.includes(origin))) {
      return {
        error: this.error(request, {
          type: "schema",
          code: ErrorCodes.ORIGIN_NOT_ALLOWED,
          providerRetryHint: false,
          message: `refused to send ${request.operation} to ${origin ?? "an invalid URL"}: this credential belongs to ${this.options.allowedOrigins.join(", ")}`,
        }),
      };
    }
    let raw: ExchangeAnswer;
    try {
      const body = buildBody(request);
      raw = await this.exchange(request.url, {
        method: request.method,
        headers: buildHeaders(request),
        ...(body === undefined ? {} : { body }),
        timeoutMs,
        ...(request.maxResponseBytes === undefined ? {} : { maxResponseBytes: request.maxResponseBytes }),
      });
    } catch (cause) {
      return { error: this.networkError(request, cause, timeoutMs) };
    }
    const { bytes } = raw;
    if (bytes === undefined) {
      return {
        error: this.error(request, {
          type: "schema",
          code: ErrorCodes.RESPONSE_TOO_LARGE,
          providerRetryHint: false,
          message: `${this.options.displayName} answered ${request.operation} with more than ${request.maxResponseBytes} bytes, the largest answer taken; ask for less (a page, fewer fields)`,
        }),
      };
    }
    const text = UTF8.decode(bytes);
    const response: ProviderResponse = { status: raw.status, headers: raw.headers, bytes, text, json: parseJson(text) };
    if (this.options.pacer && this.options.rateLimit && request.paceKey !== undefined) {
      const signal = this.options.rateLimit(response, this.clock.now());
      if (signal) this.options.pacer.observe(request.paceKey, signal);
    }
    const error = this.classify(request, response);
    if (error) answers.set(error, { response, operation: request.operation });
    return { response, error };
  }

  private classify(request: ProviderRequest, response: ProviderResponse): IntegrationError | undefined {
    const name = this.options.displayName;
    if (response.status >= 300 && response.status < 400 && request.passRedirects) return undefined;
    if (response.status >= 300 && response.status < 400) {
      // Following it would hand the request, and its token, to another address.
      return this.error(request, {
        type: "upstream",
        status: response.status,
        code: ErrorCodes.UNEXPECTED_REDIRECT,
        // Asking again gets the same redirect.
        providerRetryHint: false,
        message: `${name} answered ${request.operation} with a redirect (${response.status}), which is not followed`,
      });
    }
    const verdict = this.options.classify(response, request);
    if (verdict) {
      const retryAfterSeconds =
        verdict.retryAfterSeconds ??
        (verdict.type === "rate-limit" ? parseRetryAfter(response.headers.get("retry-after"), this.clock.now()) : undefined);
      return this.error(request, { ...verdict, status: verdict.status ?? response.status, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) });
    }
    if (response.json === undefined && request.expectJson !== false) {
      return this.error(request, {
        type: "upstream",
        status: response.status,
        code: ErrorCodes.UNPARSABLE_RESPONSE,
        message: `${name} answered ${request.operation} with a body that is not valid JSON`,
      });
    }
    return undefined;
  }

  private networkError(request: ProviderRequest, cause: unknown, timeoutMs: number): IntegrationError {
    const refused = refusedAddress(cause);
    if (refused) {
      // The connect-time guard refused a non-public address: a policy decision, not a flaky network.
      return this.error(request, { type: "schema", code: ErrorCodes.BASE_URL_REFUSED, providerRetryHint: false, message: refused, cause });
    }
    const timedOut = cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError");
    const code = transportCode(cause);
    const what = timedOut ? `no response within ${timeoutMs}ms` : (code && TRANSPORT_CODES[code]) ?? "transport failure";
    return this.error(request, {
      type: "network",
      code: timedOut ? ErrorCodes.TIMEOUT : (code ?? ErrorCodes.TRANSPORT),
      message: `${this.options.displayName} ${request.operation} failed before a response: ${what}`,
      cause,
    });
  }

  private error(request: ProviderRequest, init: Omit<IntegrationErrorInit, "provider">): IntegrationError {
    return new IntegrationError({ ...init, provider: this.options.provider, message: scrub(init.message, request.secrets) });
  }
}

function buildHeaders(request: ProviderRequest): Record<string, string> {
  const headers: Record<string, string> = { accept: "application/json", ...request.headers };
  if (request.form) headers["content-type"] = "application/x-www-form-urlencoded";
  else if (request.json !== undefined) headers["content-type"] = "application/json; charset=utf-8";
  return headers;
}

function buildBody(request: ProviderRequest): string | Uint8Array | undefined {
  if (request.body !== undefined) return request.body;
  if (request.form) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(request.form)) if (value !== undefined) params.set(key, value);
    return params.toString();
  }
  return request.json === undefined ? undefined : JSON.stringify(request.json);
}

function parseJson(text: string): unknown {
  // Whether anything but whitespace is there, without the copy a trim() of the whole body makes.
  if (!/\S/.test(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The guarded lookup's refusal (code EAI_NONPUBLIC), if that is what failed the request. */
function refusedAddress(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (code === "EAI_NONPUBLIC" && typeof message === "string") return message;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The errno-style code undici puts on `cause` (or on the cause's cause). */
function transportCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code in TRANSPORT_CODES) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Replaces every secret of the request that a provider message echoes with its masked form. */
export function scrub(message: string, secrets: readonly (string | undefined)[] | undefined): string {
  let out = message;
  for (const secret of secrets ?? []) {
    if (secret && secret.length >= 6) out = out.split(secret).join(maskSecret(secret));
  }
  return out;
}
