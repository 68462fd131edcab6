/** A harness with a Jira grant the ticket sync can run with, connected through the sandbox's consent. */
import { expect } from "vitest";
import { PROVIDER_IDS } from "../integrations/registry.js";
import { cookieHeader, startHarness, type Harness } from "./harness.js";

export const SYNC_USER = "sync-user";
export const JIRA_API = "/api/integrations/jira";
/** What a pull-only sync needs of a 3LO grant. */
export const PULL_SCOPES = ["read:jira-user", "read:jira-work", "offline_access"];
/** What a two-way sync needs of a 3LO grant. */
export const SYNC_SCOPES = ["read:jira-user", "read:jira-work", "write:jira-work", "manage:jira-webhook", "offline_access"];

/** Provider settings with the Jira scopes given, every other provider as it defaults. */
export function providersWithJiraScopes(scopes: readonly string[]): never {
  return { ...Object.fromEntries(PROVIDER_IDS.map((id) => [id, {}])), jira: { scopes: [...scopes] } } as never;
}

export function startSyncHarness(options: Parameters<typeof startHarness>[0] = {}, scopes: readonly string[] = SYNC_SCOPES): Promise<Harness> {
  return startHarness({ ...options, config: { ...options.config, providers: providersWithJiraScopes(scopes) } });
}

/** start → consent (auto-approved) → callback with the flow's cookie: the new connection's id. */
export async function connectJira(h: Harness, user = SYNC_USER): Promise<string> {
  const start = await h.request({ method: "POST", url: `${JIRA_API}/oauth/start`, user });
  const consent = await fetch((start.json() as { authUrl: string }).authUrl, { redirect: "manual" });
  const callback = new URL(consent.headers.get("location") as string);
  const page = await h.request({ method: "GET", url: callback.pathname + callback.search, headers: { cookie: cookieHeader(start.headers["set-cookie"]) } });
  expect(page.statusCode, page.body).toBe(200);
  const list = await h.request({ method: "GET", url: `${JIRA_API}/connections`, user });
  return ((list.json() as { connections: Array<{ id: string }> }).connections[0] as { id: string }).id;
}
