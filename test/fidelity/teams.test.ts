/**
 * Microsoft's Graph client (@microsoft/microsoft-graph-client 3) pointed at
 * the Teams sandbox unchanged. The client adds the token only to https URLs
 * of Graph or of a custom host, so the sandbox listens over https with a
 * certificate made for the test; the client's fetch trusts that certificate
 * alone (an undici Agent as fetchOptions.dispatcher), and its chain has no
 * retry handler. Who-am-I, then every call of the Teams actions: joinedTeams,
 * a team's channels, a message posted to a channel; a channel's messages
 * paged by @odata.nextLink with the SDK's PageIterator; and Graph's 404 as
 * the client raises it (GraphError, code NotFound).
 */
import { AuthenticationHandler, Client, GraphError, HTTPMessageHandler, PageIterator, TelemetryHandler, type PageCollection } from "@microsoft/microsoft-graph-client";
import { Agent } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { startTeamsSandbox } from "../../src/integrations/teams/sandbox.js";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";
import { testCertificate } from "../../src/testing/testCertificate.js";

type Json = Record<string, unknown>;
const SCOPES = ["User.Read", "Team.ReadBasic.All", "Channel.ReadBasic.All", "ChannelMessage.Send", "ChannelMessage.Read.All"];

const tls = testCertificate();
const start = closedAfterEach(startTeamsSandbox, { tls });
/** Trusts the test certificate and nothing else; closed after each test with the sandbox. */
const agents: Agent[] = [];
afterEach(async () => {
  for (const agent of agents.splice(0)) await agent.close();
});

/** A token from the credentials desk with `scopes` (delegated, as after a consent). */
async function tokenFor(sandbox: StartedSandbox, scopes: string[] = SCOPES): Promise<string> {
  const desk = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes }), ...trusting() });
  return ((await desk.json()) as { accessToken: string }).accessToken;
}
/**
 * Fetch options whose dispatcher trusts the test certificate alone. Node's own fetch (which the client's
 * HTTPMessageHandler calls) takes an undici dispatcher; Node types it with its bundled copy of undici's
 * types, which the undici package's Agent matches at run time but not by name, hence the one cast.
 */
function trusting(): RequestInit {
  const agent = new Agent({ connect: { ca: tls.cert } });
  agents.push(agent);
  return { dispatcher: agent } as unknown as RequestInit;
}

/** The Graph client on `accessToken`, at the sandbox. */
function graphClient(sandbox: StartedSandbox, accessToken: string): Client {
  // The default chain less its retry and redirect handlers: an answer is seen as the sandbox sent it.
  const auth = new AuthenticationHandler({ getAccessToken: async () => accessToken });
  const telemetry = new TelemetryHandler();
  auth.setNext(telemetry);
  telemetry.setNext(new HTTPMessageHandler());
  return Client.initWithMiddleware({
    middleware: auth,
    baseUrl: `${sandbox.url}/`,
    // The token goes to Graph's hosts and these only (AuthenticationHandler checks the URL's host).
    customHosts: new Set([new URL(sandbox.url).hostname]),
    // HTTPMessageHandler calls the global fetch with these options: Node's fetch takes an undici dispatcher.
    fetchOptions: trusting(),
  });
}
const graph = async (sandbox: StartedSandbox, scopes: string[] = SCOPES): Promise<Client> => graphClient(sandbox, await tokenFor(sandbox, scopes));

/** The GraphError a failed call raised. */
async function failure(call: Promise<unknown>): Promise<GraphError> {
  const error: unknown = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GraphError);
  return error as GraphError;
}

describe("the Graph client against the Teams sandbox over https", () => {
  it("who-am-I, joinedTeams, a team's channels, and a message posted to a channel", async () => {
    const sandbox = await start();
    expect(sandbox.url).toMatch(/^https:/);
    const client = await graph(sandbox);

    const me = (await client.api("/me").get()) as Json;
    expect(me).toMatchObject({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity", id: expect.any(String), userPrincipalName: expect.stringContaining("@") });
    const selected = (await client.api("/me").select(["id", "displayName"]).get()) as Json;
    expect(Object.keys(selected).sort()).toEqual(["@odata.context", "displayName", "id"]);

    const joined = (await client.api("/me/joinedTeams").get()) as { value: Json[] };
    expect(joined.value.length).toBeGreaterThan(0);
    const team = joined.value[0] as Json;
    expect(team).toMatchObject({ id: expect.any(String), displayName: expect.any(String), description: expect.any(String) });

    const channels = (await client.api(`/teams/${team.id as string}/channels`).get()) as { value: Json[] };
    const general = channels.value.find((c) => c.displayName === "General") as Json;
    expect(general).toMatchObject({ id: expect.stringMatching(/^19:.+@thread\.tacv2$/), membershipType: "standard" });

    const path = `/teams/${team.id as string}/channels/${encodeURIComponent(general.id as string)}/messages`;
    const sent = (await client.api(path).post({ body: { contentType: "html", content: "<b>Deploy</b> finished" } })) as Json;
    expect(sent).toMatchObject({ id: expect.any(String), messageType: "message", body: { contentType: "html", content: "<b>Deploy</b> finished" }, channelIdentity: { teamId: team.id, channelId: general.id } });
    const again = (await client.api(`${path}/${sent.id as string}`).get()) as Json;
    expect(again).toMatchObject({ id: sent.id, body: { content: "<b>Deploy</b> finished" } });
  });

  it("pages a channel's messages by @odata.nextLink, as the SDK's PageIterator follows it", async () => {
    const sandbox = await start();
    const client = await graph(sandbox);
    const team = ((await client.api("/me/joinedTeams").get()) as { value: Json[] }).value[0] as Json;
    const channel = ((await client.api(`/teams/${team.id as string}/channels`).get()) as { value: Json[] }).value[0] as Json;
    const path = `/teams/${team.id as string}/channels/${encodeURIComponent(channel.id as string)}/messages`;
    for (let i = 1; i <= 5; i++) await client.api(path).post({ body: { content: `message ${i}` } });

    const first = (await client.api(path).top(2).get()) as PageCollection;
    expect(first.value).toHaveLength(2);
    expect(first["@odata.nextLink"]).toMatch(new RegExp(`^${sandbox.url}/v1\\.0/teams/`));
    const seen: string[] = [];
    const iterator = new PageIterator(client, first, (message: Json) => {
      seen.push((message.body as Json).content as string);
      return true;
    });
    await iterator.iterate();
    expect(seen).toEqual(["message 5", "message 4", "message 3", "message 2", "message 1"]);
    expect(iterator.isComplete()).toBe(true);
  });

  it("raises Graph's errors as GraphError: a 404 for an unknown team, a 403 for a missing permission, a 401 for a bad token", async () => {
    const sandbox = await start();
    const client = await graph(sandbox);
    const missing = await failure(client.api("/teams/00000000-0000-0000-0000-000000000000/channels").get());
    expect(missing).toMatchObject({ statusCode: 404, code: "NotFound", requestId: expect.any(String) });

    const reader = await graph(sandbox, ["User.Read", "Team.ReadBasic.All"]);
    const team = ((await reader.api("/me/joinedTeams").get()) as { value: Json[] }).value[0] as Json;
    const forbidden = await failure(reader.api(`/teams/${team.id as string}/channels`).get());
    expect(forbidden).toMatchObject({ statusCode: 403, code: "Forbidden" });

    const refused = await failure(graphClient(sandbox, "not.a.token").api("/me").get());
    expect(refused).toMatchObject({ statusCode: 401, code: "InvalidAuthenticationToken" });
  });
});
