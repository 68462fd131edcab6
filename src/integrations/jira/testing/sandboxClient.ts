/** A client of a started Jira sandbox for its own tests: JSON calls, and a 3LO consent and code exchange. */
import type { StartedSandbox } from "../../../sandbox/kit.js";

type Json = Record<string, unknown>;
export const JIRA_SANDBOX_REDIRECT = "http://localhost:3000/api/integrations/jira/oauth/callback";

export function jiraSandboxClient(sandbox: StartedSandbox) {
  /** One JSON call (a fresh connection each, so a closing sandbox is never held up); the body parsed when there is one. */
  const call = async (method: string, url: string, authorization: string, body?: unknown) => {
    const res = await fetch(url, { method, headers: { authorization, connection: "close", ...(body === undefined ? {} : { "content-type": "application/json" }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Json & Json[] };
  };
  /** A 3LO consent and code exchange for `scopes`: the Bearer header, the site's cloud id and its gateway base. */
  const consent = async (scopes: readonly string[], siteIndex = 0) => {
    const authorize = new URL(sandbox.endpoints.authorizeUrl);
    const params = { audience: "api.atlassian.com", client_id: sandbox.clientId, scope: scopes.join(" "), redirect_uri: JIRA_SANDBOX_REDIRECT, state: "s", response_type: "code", prompt: "consent" };
    for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
    const code = new URL((await fetch(authorize, { redirect: "manual" })).headers.get("location") as string).searchParams.get("code") as string;
    const token = await call("POST", sandbox.endpoints.tokenUrl, "", { grant_type: "authorization_code", client_id: sandbox.clientId, client_secret: sandbox.clientSecret, code, redirect_uri: JIRA_SANDBOX_REDIRECT });
    const authorization = `Bearer ${token.body.access_token as string}`;
    const resources = await call("GET", `${sandbox.endpoints.apiUrl}/oauth/token/accessible-resources`, authorization);
    const cloudId = (resources.body[siteIndex] as Json).id as string;
    return { authorization, cloudId, resources: resources.body, gateway: `${sandbox.endpoints.apiUrl}/ex/jira/${cloudId}` };
  };
  return { call, consent };
}
