/**
 * `autoflow-integrations/client`: a small typed HTTP client for every route
 * of the API. Its types are read off the same zod schemas the server answers
 * by (src/api/schemas.ts, imported for types only); at run time it carries
 * only the route table and the SDK's error class. A failure comes back as an
 * {@link ApiError}, the SDK's `IntegrationError` read from the error body
 * (type, code, provider, field, retryAfterSeconds) plus the HTTP status.
 */
import type { z } from "zod";
import { ErrorCodes, IntegrationError, type IntegrationErrorInit } from "../integrations/shared/errors.js";
import { TIER1_ERROR_TYPES, type Tier1ErrorType } from "../integrations/shared/contract.js";
import type { ProviderId } from "../integrations/registry.js";
import type { CONNECTORS } from "../integrations/registry.js";
import type { ConnectionHealthOf, ConnectionPublicOf } from "../sdk.js";
import type { OPERATION_SCHEMAS } from "../api/schemas.js";
import { API_ROUTES, type OperationId } from "../api/routes.js";

type Schemas = typeof OPERATION_SCHEMAS;
type Field<O extends OperationId, K extends string> = Schemas[O] extends Record<K, infer S> ? (S extends z.ZodType ? z.input<S> : never) : never;
type SuccessStatus = 200 | 201;
/** What an operation answers on success, typed from its schema. */
export type OutputOf<O extends OperationId> = {
  [S in SuccessStatus]: Schemas[O]["responses"] extends Record<S, { schema: infer T }> ? (T extends z.ZodType ? z.output<T> : never) : never;
}[SuccessStatus];

/** What an operation takes: its path parameters, query, body and headers, typed from its schemas. */
export type InputOf<O extends OperationId> = (Schemas[O] extends { params: z.ZodType } ? { params: Field<O, "params"> } : { params?: never }) & {
  query?: Field<O, "query">;
  body?: Field<O, "body">;
  headers?: Record<string, string>;
};

type Actions<P extends ProviderId> = (typeof CONNECTORS)[P]["actions"];
export type ActionName<P extends ProviderId> = keyof Actions<P> & string;
export type ActionInput<P extends ProviderId, A extends ActionName<P>> = Actions<P>[A] extends { input: infer I extends z.ZodType } ? z.input<I> : never;
export type ActionOutput<P extends ProviderId, A extends ActionName<P>> = Actions<P>[A] extends { output: infer O extends z.ZodType } ? z.output<O> : never;

export type ClientOptions = {
  /** The service's origin (and base path, if any): `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** A user JWT (or the operator token for the operator view), or a function that gives one per request. */
  token?: string | (() => string | Promise<string>);
  /** fetch to use (the global one by default): a test's, one with a proxy, one with retries. */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  headers?: Readonly<Record<string, string>>;
};

/** A failed request: the error body as the SDK's error, with the HTTP status and the body as it came. */
export class ApiError extends IntegrationError {
  readonly httpStatus: number;
  readonly body: unknown;

  constructor(init: IntegrationErrorInit & { httpStatus: number; body: unknown }) {
    super(init);
    this.httpStatus = init.httpStatus;
    this.body = init.body;
  }
}

/** A proxied call's answer: the provider's status, headers and bytes. */
export type ProxyResponse = { status: number; headers: Headers; body: Uint8Array; connectionId: string | null; errorType: Tier1ErrorType | null };

/** A request's parts, once typed by its operation. */
type RequestParts = { params?: object; query?: object; body?: unknown; headers?: Record<string, string> };


export class AutoFlowClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    const base = new URL(options.baseUrl);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError(`baseUrl must be an http or https URL, not ${JSON.stringify(options.baseUrl)}`);
    if (base.search || base.hash) throw new TypeError(`baseUrl takes no query or fragment (the client adds each route's own): ${JSON.stringify(options.baseUrl)}`);
    this.base = base.href.replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** Any operation by id, typed from its schemas: `call("health", { params: { provider: "slack" } })`. */
  async call<O extends OperationId>(operation: O, ...input: Schemas[O] extends { params: z.ZodType } ? [InputOf<O>] : [InputOf<O>?]): Promise<OutputOf<O>> {
    return (await this.json(operation, (input[0] ?? {}) as RequestParts)) as OutputOf<O>;
  }

  // The per-connector methods below answer with their provider's own shape: the route's schema is
  // the union over connectors, and the provider parameter says which one the server answered with.

  listProviders() {
    return this.call("listProviders");
  }
  listAllConnections() {
    return this.call("listAllConnections");
  }
  startOAuth(provider: ProviderId, body?: InputOf<"startOAuth">["body"]) {
    return this.call("startOAuth", { params: { provider }, ...(body ? { body } : {}) });
  }
  async completeOAuth<P extends ProviderId>(provider: P, body: NonNullable<InputOf<"completeOAuth">["body"]>): Promise<ConnectionPublicOf<P>> {
    return (await this.json("completeOAuth", { params: { provider }, body })) as ConnectionPublicOf<P>;
  }
  async connect<P extends ProviderId>(provider: P, body: NonNullable<InputOf<"connect">["body"]>): Promise<ConnectionPublicOf<P>> {
    return (await this.json("connect", { params: { provider }, body })) as ConnectionPublicOf<P>;
  }
  async listConnections<P extends ProviderId>(provider: P, query?: InputOf<"listConnections">["query"]): Promise<{ connections: ConnectionPublicOf<P>[] }> {
    return (await this.json("listConnections", { params: { provider }, ...(query ? { query } : {}) })) as { connections: ConnectionPublicOf<P>[] };
  }
  testConnection(provider: ProviderId, query?: InputOf<"testConnection">["query"]) {
    return this.call("testConnection", { params: { provider }, ...(query ? { query } : {}) });
  }
  async health<P extends ProviderId>(provider: P, query?: InputOf<"health">["query"]): Promise<ConnectionHealthOf<P>> {
    return (await this.json("health", { params: { provider }, ...(query ? { query } : {}) })) as ConnectionHealthOf<P>;
  }
  async runAction<P extends ProviderId, A extends ActionName<P>>(provider: P, action: A, input: ActionInput<P, A>, query?: InputOf<"runAction">["query"]): Promise<ActionOutput<P, A>> {
    return (await this.json("runAction", { params: { provider, action }, body: input as Record<string, unknown>, ...(query ? { query } : {}) })) as ActionOutput<P, A>;
  }
  disconnect(provider: ProviderId, id: string) {
    return this.call("disconnect", { params: { provider, id } });
  }
  /** One authenticated call through the user's connection: the provider's answer as it gave it (no error is thrown for its refusals). */
  async proxy(provider: ProviderId, body: NonNullable<InputOf<"proxy">["body"]>): Promise<ProxyResponse> {
    const response = await this.send("proxy", { params: { provider }, body }, { passthrough: true });
    const errorType = response.headers.get("x-autoflow-error-type");
    return {
      status: response.status,
      headers: response.headers,
      body: new Uint8Array(await response.arrayBuffer()),
      connectionId: response.headers.get("x-autoflow-connection-id"),
      errorType: errorType && (TIER1_ERROR_TYPES as readonly string[]).includes(errorType) ? (errorType as Tier1ErrorType) : null,
    };
  }
  operatorOverview(query?: InputOf<"operatorOverview">["query"]) {
    return this.call("operatorOverview", query ? { query } : {});
  }

  private async json(operation: OperationId, parts: RequestParts): Promise<unknown> {
    const response = await this.send(operation, parts);
    return response.status === 204 ? undefined : readJson(response, operation);
  }

  private async send(operation: OperationId, input: RequestParts, mode: { passthrough?: boolean } = {}): Promise<Response> {
    const route = API_ROUTES[operation];
    const params = (input.params ?? {}) as Record<string, unknown>;
    const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params[name];
      if (typeof value !== "string" || value === "") throw new TypeError(`${operation}: the path parameter ${name} is missing`);
      // "." and ".." would name another route once the URL is resolved; no id or key is either.
      if (value === "." || value === "..") throw new TypeError(`${operation}: the path parameter ${name} cannot be ${JSON.stringify(value)}`);
      return encodeURIComponent(value);
    });
    const url = new URL(this.base + path);
    for (const [key, value] of Object.entries(input.query ?? {}) as Array<[string, unknown]>) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: "application/json", ...this.options.headers, ...input.headers };
    const token = typeof this.options.token === "function" ? await this.options.token() : this.options.token;
    if (token !== undefined && route.auth !== "none") headers.authorization = `Bearer ${token}`;
    const init: RequestInit = { method: route.method, headers };
    if (input.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(input.body);
    }
    let response: Response;
    try {
      response = await this.fetchImpl(url, init);
    } catch (cause) {
      throw new IntegrationError({ type: "network", code: ErrorCodes.TRANSPORT, message: `${route.method} ${path}: the service could not be reached (${describe(cause)})`, cause });
    }
    if (response.ok || (mode.passthrough && response.headers.has("x-autoflow-connection-id"))) return response;
    throw await errorOf(response, `${route.method} ${path}`);
  }
}

async function readJson(response: Response, operation: string): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError({ type: "upstream", code: ErrorCodes.UNPARSABLE_RESPONSE, httpStatus: response.status, body: text, message: `${operation}: the service answered ${response.status} with a body that is not JSON` });
  }
}

/** The error body as an {@link ApiError}; any other failure (a proxy's page, an empty 502) by its status. */
async function errorOf(response: Response, what: string): Promise<ApiError> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    // not JSON: described by status below
  }
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  const retryAfter = Number(response.headers.get("retry-after"));
  if (error && typeof error.type === "string" && (TIER1_ERROR_TYPES as readonly string[]).includes(error.type) && typeof error.message === "string") {
    return new ApiError({
      type: error.type as Tier1ErrorType,
      message: error.message,
      httpStatus: response.status,
      body,
      ...(typeof error.provider === "string" ? { provider: error.provider } : {}),
      ...(typeof error.code === "string" ? { code: error.code } : {}),
      ...(typeof error.field === "string" ? { field: error.field } : {}),
      ...(typeof error.providerStatus === "number" ? { status: error.providerStatus } : {}),
      ...(typeof error.retryAfterSeconds === "number" ? { retryAfterSeconds: error.retryAfterSeconds } : Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
    });
  }
  const type: Tier1ErrorType = response.status === 429 ? "rate-limit" : response.status === 401 || response.status === 403 ? "auth" : response.status >= 500 ? "upstream" : "schema";
  return new ApiError({ type, httpStatus: response.status, body, message: `${what} answered ${response.status} without the error body${text ? `: ${text.slice(0, 200)}` : ""}` });
}

function describe(cause: unknown): string {
  const inner = (cause as { cause?: { code?: string; message?: string } })?.cause;
  return inner?.code ?? inner?.message ?? (cause instanceof Error ? cause.message : String(cause));
}

export { IntegrationError } from "../integrations/shared/errors.js";
export { API_ROUTES, type OperationId } from "../api/routes.js";
