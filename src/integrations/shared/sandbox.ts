/**
 * What every sandbox provider shares: its own HTTP server on loopback, the
 * request log, fault injection and the credentials desk, all under
 * `/_sandbox/`. A connector's `sandbox.ts` adds only the provider's real
 * paths, bodies and errors.
 *
 *   POST   /_sandbox/faults       {"fault": ..., "times"?, "retryAfterSeconds"?, "delayMs"?, "path"?}
 *                                  fault: rate-limit | server-error | revoke-all | delay | disconnect | malformed | bad-request
 *   DELETE /_sandbox/faults       clear every pending fault
 *   GET    /_sandbox/requests     [{method, path, time, status}], oldest first
 *   DELETE /_sandbox/requests     clear the log
 *   POST   /_sandbox/credentials  a key or token the sandbox accepts, as the provider's dashboard hands one out
 */
import { randomBytes } from "node:crypto";
import formbody from "@fastify/formbody";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { z } from "zod";
import type { ConnectorEndpoints } from "./connector.js";
import { codeChallengeS256 } from "./oauth.js";

/**
 * The faults a sandbox can be told to produce. `bad-request` (a permanent
 * refusal such as Slack's invalid_arguments or Stripe's 400) is an addition
 * to the six of the spec, so that every one of the five error types can be
 * produced at the provider.
 */
export const FAULT_KINDS = ["rate-limit", "server-error", "revoke-all", "delay", "disconnect", "malformed", "bad-request"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const faultSchema = z.strictObject({
  fault: z.enum(FAULT_KINDS),
  /** How many requests it affects; every request until cleared when left out. */
  times: z.int().positive().max(1_000_000).optional(),
  retryAfterSeconds: z.number().nonnegative().max(86_400).optional(),
  delayMs: z.int().nonnegative().max(600_000).optional(),
  /** Only requests to this path (exact, without query); every provider path but the consent page when left out. */
  path: z.string().startsWith("/").max(512).optional(),
});
export type Fault = z.infer<typeof faultSchema>;

export type SandboxRequestRecord = { method: string; path: string; time: string; status?: number };

/** The provider-specific answers to faults that produce a response. */
export type FaultResponders = {
  rateLimit(reply: FastifyReply, fault: Fault): FastifyReply;
  serverError(reply: FastifyReply, fault: Fault): FastifyReply;
  /** The provider's answer to a request it refuses for good (a permanent 4xx). */
  badRequest(reply: FastifyReply, fault: Fault): FastifyReply;
  /** Defaults to a 200 whose JSON body is cut short. */
  malformed?(reply: FastifyReply, fault: Fault): FastifyReply;
};

export type SandboxOptions = {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Loopback only: sandboxes never listen beyond this machine. */
  host?: "127.0.0.1" | "::1" | "localhost";
  /** Redirect URIs registered for the sandbox's OAuth app. */
  redirectUris?: string[];
  /** Lifetime of expiring access tokens, where the provider issues them. */
  accessTokenTtlSeconds?: number;
  /** Fixed client id and secret (several service instances sharing one sandbox); random when left out. */
  clientId?: string;
  clientSecret?: string;
};

export type StartedSandbox = {
  provider: string;
  url: string;
  endpoints: ConnectorEndpoints;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
};

export type SandboxDefinition = {
  provider: string;
  /** Paths that a browser visits (the consent page): faults do not apply to them. */
  browserPaths: readonly string[];
  faults: FaultResponders;
  /** Registers the provider's real routes. */
  routes(app: FastifyInstance): void;
  /** The `revoke-all` fault: every token issued so far stops working. */
  revokeAll(): void;
  /** Hands out a credential, as the provider's dashboard would. */
  issueCredential(body: unknown): Record<string, unknown>;
  endpoints(origin: string): ConnectorEndpoints;
};

/** Starts `definition` on its own loopback port. */
export async function startSandbox(definition: SandboxDefinition, options: SandboxOptions, credentials: { clientId: string; clientSecret: string }): Promise<StartedSandbox> {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  await app.register(formbody);
  const faults: Fault[] = [];
  const log: SandboxRequestRecord[] = [];

  app.addHook("onRequest", async (request, reply) => {
    const path = pathOf(request);
    if (path.startsWith("/_sandbox/")) return;
    const record: SandboxRequestRecord = { method: request.method, path, time: new Date().toISOString() };
    log.push(record);
    reply.raw.once("finish", () => {
      record.status = reply.raw.statusCode;
    });
    if (definition.browserPaths.includes(path)) return;
    const fault = takeFault(faults, path);
    if (!fault) return;
    switch (fault.fault) {
      case "delay":
        await new Promise((resolve) => setTimeout(resolve, fault.delayMs ?? 1_000));
        return;
      case "disconnect":
        // Drop the connection without a byte of response: the client sees a reset.
        reply.hijack();
        request.raw.socket.destroy();
        return reply;
      case "rate-limit":
        return definition.faults.rateLimit(reply, fault);
      case "server-error":
        return definition.faults.serverError(reply, fault);
      case "bad-request":
        return definition.faults.badRequest(reply, fault);
      case "malformed":
        return definition.faults.malformed
          ? definition.faults.malformed(reply, fault)
          : reply.code(200).header("content-type", "application/json; charset=utf-8").send('{"ok": true, "trunc');
      case "revoke-all":
        return; // acted on when set, never queued
    }
  });

  app.post("/_sandbox/faults", async (request, reply) => {
    const parsed = faultSchema.safeParse(request.body);
    if (!parsed.success) {
      return reply.code(400).send({ error: `invalid fault: ${z.prettifyError(parsed.error)}`, allowed: FAULT_KINDS });
    }
    if (parsed.data.fault === "revoke-all") {
      definition.revokeAll();
      return reply.code(200).send({ ok: true, fault: "revoke-all", applied: true });
    }
    faults.push({ ...parsed.data });
    return reply.code(201).send({ ok: true, pending: faults });
  });
  app.delete("/_sandbox/faults", async () => {
    faults.length = 0;
    return { ok: true, pending: [] };
  });
  app.get("/_sandbox/requests", async () => ({ requests: log }));
  app.delete("/_sandbox/requests", async () => {
    log.length = 0;
    return { ok: true };
  });
  app.post("/_sandbox/credentials", async (request, reply) => {
    try {
      return reply.code(201).send(definition.issueCredential(request.body ?? {}));
    } catch (error) {
      return reply.code(400).send({ error: error instanceof Error ? error.message : String(error) });
    }
  });

  definition.routes(app);
  const host = options.host ?? "127.0.0.1";
  await app.listen({ host, port: options.port ?? 0 });
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("sandbox did not bind a TCP port");
  const url = `http://${host === "::1" ? "[::1]" : host}:${address.port}`;
  return {
    provider: definition.provider,
    url,
    endpoints: definition.endpoints(url),
    clientId: credentials.clientId,
    clientSecret: credentials.clientSecret,
    close: () => app.close(),
  };
}

function takeFault(faults: Fault[], path: string): Fault | undefined {
  const index = faults.findIndex((f) => f.path === undefined || f.path === path);
  if (index < 0) return undefined;
  const fault = faults[index] as Fault;
  if (fault.times !== undefined) {
    fault.times -= 1;
    if (fault.times <= 0) faults.splice(index, 1);
  }
  return fault;
}

function pathOf(request: FastifyRequest): string {
  const q = request.url.indexOf("?");
  return q < 0 ? request.url : request.url.slice(0, q);
}

/** Random characters from `alphabet` (rejection-free for alphabets up to 256). */
export function randomChars(length: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

/** Client credentials from HTTP Basic (RFC 6749 §2.3.1), if the request carries them. */
export function basicCredentials(request: FastifyRequest): { id: string; secret: string } | undefined {
  const header = request.headers.authorization;
  if (!header?.toLowerCase().startsWith("basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { id: decodeURIComponent(decoded.slice(0, colon)), secret: decodeURIComponent(decoded.slice(colon + 1)) };
}

/** The bearer token of a request, if any. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header?.toLowerCase().startsWith("bearer ")) return undefined;
  return header.slice(7).trim() || undefined;
}

/** A form or JSON body as a flat string record (what providers read). */
export function bodyParams(request: FastifyRequest): Record<string, string> {
  const body = request.body;
  const out: Record<string, string> = {};
  if (body && typeof body === "object") {
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      if (typeof value === "string") out[key] = value;
      else if (typeof value === "number" || typeof value === "boolean") out[key] = String(value);
    }
  }
  return out;
}

export function queryParams(request: FastifyRequest): Record<string, string> {
  const query = request.query as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(query ?? {})) if (typeof value === "string") out[key] = value;
  return out;
}

export { codeChallengeS256 as challengeOf } from "./oauth.js";

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

/**
 * The authorization server's PKCE check (RFC 7636 §4.6): `verifier` is well
 * formed and transforms to `challenge` by `method`. Each sandbox answers a
 * mismatch with its own provider's error.
 */
export function verifierMatches(verifier: string | undefined, challenge: string, method: string = "S256"): boolean {
  if (verifier === undefined || !PKCE_VERIFIER.test(verifier)) return false;
  return (method === "S256" ? codeChallengeS256(verifier) : verifier) === challenge;
}
