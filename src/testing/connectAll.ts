/**
 * Connects a user at every provider of a running service over its HTTP API,
 * as a person would: an OAuth flow through the sandbox's consent page
 * (completed with the user's bearer) and a key from the sandbox's
 * credentials desk. Then checks what every connection answers.
 */
import { PROVIDER_IDS, type ProviderId } from "../integrations/registry.js";

type Json = Record<string, unknown>;
export type MadeConnection = { provider: ProviderId; id: string; authMethod: string; baseUrl?: string };

export function apiOf(base: string, token: string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Json; text: string }> => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      // Not JSON: the text says what came back.
    }
    return { status: response.status, json, text };
  };
}

/** Each provider's sandbox origin, as GET /api/integrations lists it. */
export async function sandboxUrls(base: string, token: string): Promise<Record<ProviderId, string>> {
  const { json } = await apiOf(base, token)("GET", "/api/integrations");
  const providers = json.providers as { id: ProviderId; sandboxUrl?: string }[];
  return Object.fromEntries(providers.map((p) => [p.id, p.sandboxUrl as string])) as Record<ProviderId, string>;
}

/** Begins a flow at `startBase`, approves it at the sandbox, completes it at `completeBase` with the bearer. */
export async function connectWithOAuth(provider: ProviderId, token: string, startBase: string, completeBase = startBase): Promise<MadeConnection> {
  const started = await apiOf(startBase, token)("POST", `/api/integrations/${provider}/oauth/start`);
  if (started.status !== 200) throw new Error(`${provider} oauth/start answered ${started.status}: ${started.text}`);
  const consent = await fetch(started.json.authUrl as string, { redirect: "manual" });
  const location = consent.headers.get("location");
  if (consent.status !== 302 || !location) throw new Error(`${provider} consent answered ${consent.status}: ${await consent.text()}`);
  const callback = new URL(location);
  const code = callback.searchParams.get("code");
  const state = callback.searchParams.get("state");
  if (!code || !state) throw new Error(`${provider} consent redirected without a code: ${location}`);
  const completed = await apiOf(completeBase, token)("POST", `/api/integrations/${provider}/oauth/complete`, { code, state });
  if (completed.status !== 201) throw new Error(`${provider} oauth/complete answered ${completed.status}: ${completed.text}`);
  return { provider, id: completed.json.id as string, authMethod: completed.json.authMethod as string };
}

/** Asks the sandbox's desk for a key in the connect form and posts it, as it is, to POST .../connections (as the README does). */
export async function connectWithKey(provider: ProviderId, token: string, base: string, sandboxUrl: string): Promise<MadeConnection> {
  const desk = await fetch(`${sandboxUrl}/_sandbox/credentials?form=connect`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  if (desk.status !== 201) throw new Error(`${provider} desk answered ${desk.status}: ${await desk.text()}`);
  const body = (await desk.json()) as Json;
  const connected = await apiOf(base, token)("POST", `/api/integrations/${provider}/connections`, body);
  if (connected.status !== 201) throw new Error(`${provider} connect with a key answered ${connected.status}: ${connected.text}`);
  return {
    provider,
    id: connected.json.id as string,
    authMethod: connected.json.authMethod as string,
    ...(typeof body.baseUrl === "string" ? { baseUrl: body.baseUrl } : {}),
  };
}

/** OAuth and a key at every provider. */
export async function connectAll(base: string, token: string): Promise<MadeConnection[]> {
  const urls = await sandboxUrls(base, token);
  const made: MadeConnection[] = [];
  for (const provider of PROVIDER_IDS) {
    made.push(await connectWithOAuth(provider, token, base));
    made.push(await connectWithKey(provider, token, base, urls[provider]));
  }
  return made;
}

/** What health and test answer for each connection: `<provider>/<authMethod> health=<status> test=<http status>`. */
export async function checkAll(base: string, token: string, connections: MadeConnection[]): Promise<string[]> {
  const api = apiOf(base, token);
  const lines: string[] = [];
  for (const c of connections) {
    const health = await api("GET", `/api/integrations/${c.provider}/health?connectionId=${c.id}`);
    const test = await api("POST", `/api/integrations/${c.provider}/test?connectionId=${c.id}`);
    const detail = health.json.status === "ok" ? "" : ` (${String((health.json.details as Json | undefined)?.message ?? health.text)})`;
    lines.push(`${c.provider}/${c.authMethod} health=${String(health.json.status)} test=${test.status}${detail}`);
  }
  return lines;
}

export const allOk = (connections: MadeConnection[]): string[] => connections.map((c) => `${c.provider}/${c.authMethod} health=ok test=200`);
