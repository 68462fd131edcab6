/**
 * A fetch that hands each request to a Fastify app in process (inject), so
 * the typed client (src/client/) can drive a test service with no socket.
 */
import type { FastifyInstance } from "fastify";

export function injectFetch(app: FastifyInstance): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const res = await app.inject({
      method: request.method as "GET",
      url: url.pathname + url.search,
      headers: Object.fromEntries(request.headers),
      ...(body ? { payload: body } : {}),
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      for (const one of [value ?? []].flat()) headers.append(name, String(one));
    }
    const empty = res.statusCode === 204 || res.statusCode === 304 || request.method === "HEAD";
    return new Response(empty ? null : res.rawPayload, { status: res.statusCode, headers });
  }) as typeof fetch;
}
