/** A Linear sandbox's access token for `scope` (comma-separated, as Linear takes it), through its consent page and code exchange with PKCE. */
import { challengeOf, type StartedSandbox } from "../../../sandbox/kit.js";

export const LINEAR_TEST_REDIRECT_URI = "http://localhost:3000/api/integrations/linear/oauth/callback";
const VERIFIER = "v".repeat(43);

export async function linearAccessToken(sandbox: StartedSandbox, scope: string, redirectUri = LINEAR_TEST_REDIRECT_URI): Promise<string> {
  const authorize = new URL(sandbox.endpoints.authorizeUrl);
  const params = { client_id: sandbox.clientId, redirect_uri: redirectUri, response_type: "code", scope, state: "st", code_challenge: challengeOf(VERIFIER), code_challenge_method: "S256" };
  for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
  const code = new URL((await fetch(authorize, { redirect: "manual" })).headers.get("location") as string).searchParams.get("code") as string;
  const form = new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: VERIFIER, client_id: sandbox.clientId, client_secret: sandbox.clientSecret });
  const res = await fetch(sandbox.endpoints.tokenUrl, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form });
  return ((await res.json()) as { access_token: string }).access_token;
}
