/**
 * One HTTP exchange with a provider, as ProviderHttp needs it: the request
 * sent, the status and headers read, the body read whole up to a bound
 * (undefined past it, and the rest not read). Redirects are never followed.
 *
 * Two ways to make one:
 * - over an undici dispatcher with undici's own `request` (the default):
 *   keep-alive pools and no WHATWG Request, Response or stream objects, at
 *   about half the cost of a fetch a call;
 * - through a fetch: what tests inject, what a caller may pass in place of
 *   the network, and the guarded fetch of user-supplied base URLs.
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { getGlobalDispatcher, request, type Dispatcher } from "undici";

export type ExchangeInit = {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** How long the whole exchange may take, the body read included; past it, it fails with an AbortError or TimeoutError. */
  timeoutMs: number;
  /** The largest body read; past it the answer's bytes are undefined. */
  maxResponseBytes?: number;
};

export type ExchangeAnswer = { status: number; headers: Headers; bytes: Uint8Array | undefined };

export type Exchange = (url: string, init: ExchangeInit) => Promise<ExchangeAnswer>;

/** Exchanges made by `fetchImpl` (manual redirects, the body read up to the bound). */
export function fetchExchange(fetchImpl: typeof fetch): Exchange {
  return async (url, init) => {
    const signal = AbortSignal.timeout(init.timeoutMs);
    const response = await fetchImpl(url, { method: init.method, headers: init.headers, ...(init.body === undefined ? {} : { body: init.body }), redirect: "manual", signal });
    return { status: response.status, headers: response.headers, bytes: await readFetchBody(response, init.maxResponseBytes) };
  };
}

/** Exchanges made with undici's `request` over `dispatcher` (undici's global one when unset). */
export function dispatcherExchange(dispatcher?: Dispatcher): Exchange {
  return async (url, init) => {
    // undici takes an emitter of "abort" as a request's signal: a timer of ours emits it, cleared once
    // the body is read. An AbortSignal.timeout, its event target and its weak references cost four
    // times as much a call; undici fails the request (or the body being read) with an AbortError either way.
    const deadline = new EventEmitter();
    const timer = setTimeout(() => deadline.emit("abort"), init.timeoutMs);
    try {
      const answer = await request(url, {
        method: init.method as Dispatcher.HttpMethod,
        headers: init.headers,
        body: init.body ?? null,
        signal: deadline,
        dispatcher: dispatcher ?? getGlobalDispatcher(),
      });
      const headers = new Headers();
      for (const [name, value] of Object.entries(answer.headers)) {
        if (Array.isArray(value)) for (const one of value) headers.append(name, one);
        else if (value !== undefined) headers.append(name, value);
      }
      return { status: answer.statusCode, headers, bytes: await readStreamBody(answer.body, headers, init.maxResponseBytes) };
    } finally {
      clearTimeout(timer);
    }
  };
}

/** True when the answer says its body is longer than `limit` (nothing of it need be read). */
function declaredTooLong(headers: Headers, limit: number): boolean {
  const declared = Number(headers.get("content-length"));
  return Number.isFinite(declared) && declared > limit;
}

/** The whole body, or undefined when it is longer than `limit` bytes (the rest is not read). */
async function readFetchBody(response: Response, limit: number | undefined): Promise<Uint8Array | undefined> {
  if (limit === undefined) return new Uint8Array(await response.arrayBuffer());
  if (declaredTooLong(response.headers, limit)) {
    await response.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (!response.body) return new Uint8Array(0);
  const body = response.body;
  return collect(body as unknown as AsyncIterable<Uint8Array>, limit, () => body.cancel().catch(() => undefined));
}

/**
 * An undici body read by its events. Its async iterator (what `for await`
 * takes) wraps each chunk in a promise and watches the stream's end with
 * `finished`: about 15 µs a call more on a who-am-I's one-chunk answer.
 */
function readStreamBody(body: Readable, headers: Headers, limit: number | undefined): Promise<Uint8Array | undefined> {
  // A body let go unread is destroyed, and undici then emits an abort error: ours, and not to be thrown.
  const letGo = (): void => {
    body.on("error", () => undefined);
    body.destroy();
  };
  if (limit !== undefined && declaredTooLong(headers, limit)) {
    letGo();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const kept: Uint8Array[] = [];
    let length = 0;
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      body.off("data", onData);
      outcome();
    };
    const onData = (chunk: Uint8Array): void => {
      length += chunk.byteLength;
      if (limit !== undefined && length > limit) {
        settle(() => resolve(undefined));
        letGo();
        return;
      }
      kept.push(chunk);
    };
    body.on("data", onData);
    body.once("end", () => settle(() => resolve(joined(kept))));
    body.once("error", (error) => settle(() => reject(error)));
    // Destroyed with no error and before its end (what the iterator calls a premature close).
    body.once("close", () => settle(() => reject(Object.assign(new Error("the answer's body closed before its end"), { code: "ERR_STREAM_PREMATURE_CLOSE" }))));
  });
}

/** A fetch body (a web stream) read whole up to `limit`. */
async function collect(chunks: AsyncIterable<Uint8Array>, limit: number | undefined, stop: () => Promise<unknown>): Promise<Uint8Array | undefined> {
  const kept: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of chunks) {
    length += chunk.byteLength;
    if (limit !== undefined && length > limit) {
      await stop();
      return undefined;
    }
    kept.push(chunk);
  }
  return joined(kept);
}

/** A body's chunks as one. */
function joined(kept: readonly Uint8Array[]): Uint8Array {
  if (kept.length === 0) return new Uint8Array(0);
  return kept.length === 1 ? (kept[0] as Uint8Array) : Buffer.concat(kept);
}
