/**
 * The Teams sandbox's write: posting a chatMessage to a team's channel
 * through Graph v1.0, found through joinedTeams and the channel list, read
 * back by id; refused as Graph refuses a token without ChannelMessage.Send
 * and an unknown team or channel; and still there after a restart on the
 * same store.
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import { startTeamsSandbox, type TeamsSandboxOptions } from "./sandbox.js";

type Json = Record<string, unknown>;
const ALL = ["User.Read", "Team.ReadBasic.All", "Channel.ReadBasic.All", "ChannelMessage.Send", "ChannelMessage.Read.All"];

const start = closedAfterEach(startTeamsSandbox);

async function teams(options: TeamsSandboxOptions = {}) {
  const sandbox = await start(options);
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${sandbox.endpoints.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, connection: "close", ...(body === undefined ? {} : { "content-type": "application/json" }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
  };
  const token = async (scopes: string[]): Promise<string> =>
    ((await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes }) })).json()) as Json).accessToken as string;
  /** The first joined team and its General channel, as a caller finds them. */
  const general = async (bearer: string) => {
    const joined = await call("GET", "/me/joinedTeams", bearer);
    const teamId = ((joined.body.value as Json[])[0] as Json).id as string;
    const list = await call("GET", `/teams/${teamId}/channels`, bearer);
    expect(list.status).toBe(200);
    expect(list.body["@odata.context"]).toBe(`https://graph.microsoft.com/v1.0/$metadata#teams('${teamId}')/channels`);
    const channel = (list.body.value as Json[]).find((c) => c.displayName === "General") as Json;
    expect(channel).toMatchObject({ id: expect.stringMatching(/^19:[0-9a-f]{32}@thread\.tacv2$/), membershipType: "standard" });
    return { teamId, channelId: channel.id as string };
  };
  return { sandbox, call, token, general };
}

describe("Teams sandbox: send a channel message and read it back", () => {
  it("answers 201 with the chatMessage, and the message reads back by id", async () => {
    const k = await teams();
    const bearer = await k.token(ALL);
    const { teamId, channelId } = await k.general(bearer);
    const path = `/teams/${teamId}/channels/${encodeURIComponent(channelId)}/messages`;
    const sent = await k.call("POST", path, bearer, { body: { content: "Deploy 42 is out" } });
    expect(sent.status).toBe(201);
    expect(sent.headers.get("request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(sent.body).toMatchObject({
      "@odata.context": `https://graph.microsoft.com/v1.0/$metadata#teams('${teamId}')/channels('${encodeURIComponent(channelId)}')/messages/$entity`,
      id: expect.stringMatching(/^\d{13}$/),
      messageType: "message",
      createdDateTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      from: { application: null, device: null, user: { displayName: "Sandbox User", userIdentityType: "aadUser" } },
      body: { contentType: "text", content: "Deploy 42 is out" },
      channelIdentity: { teamId, channelId },
      attachments: [],
      mentions: [],
      reactions: [],
    });
    // The channel id unescaped in the path is the same channel.
    const read = await k.call("GET", `/teams/${teamId}/channels/${channelId}/messages/${sent.body.id as string}`, bearer);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(sent.body);
    const html = await k.call("POST", path, bearer, { body: { content: "<b>bold</b>", contentType: "html" } });
    expect(html.body).toMatchObject({ body: { contentType: "html", content: "<b>bold</b>" } });
  });

  it("refuses a token without ChannelMessage.Send with Graph's 403, and an unknown team or channel with its 404", async () => {
    const k = await teams();
    const reader = await k.token(["User.Read", "Team.ReadBasic.All", "Channel.ReadBasic.All"]);
    const { teamId, channelId } = await k.general(reader);
    const refused = await k.call("POST", `/teams/${teamId}/channels/${encodeURIComponent(channelId)}/messages`, reader, { body: { content: "x" } });
    expect(refused.status).toBe(403);
    const error = refused.body.error as Json;
    expect(error).toEqual({
      code: "Forbidden",
      message: "Missing scope permissions on the request. API requires one of 'ChannelMessage.Send, Group.ReadWrite.All'. Scopes on the request 'User.Read, Team.ReadBasic.All, Channel.ReadBasic.All'",
      innerError: { date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/), "request-id": refused.headers.get("request-id"), "client-request-id": refused.headers.get("client-request-id") },
    });

    const sender = await k.token(ALL);
    const noTeam = await k.call("POST", `/teams/00000000-0000-0000-0000-000000000000/channels/${encodeURIComponent(channelId)}/messages`, sender, { body: { content: "x" } });
    expect(noTeam.status).toBe(404);
    expect(noTeam.body.error).toMatchObject({ code: "NotFound" });
    const noChannel = await k.call("POST", `/teams/${teamId}/channels/${encodeURIComponent("19:nope@thread.tacv2")}/messages`, sender, { body: { content: "x" } });
    expect(noChannel.status).toBe(404);
    expect(noChannel.body.error).toMatchObject({ code: "NotFound" });
    const noMessage = await k.call("GET", `/teams/${teamId}/channels/${encodeURIComponent(channelId)}/messages/1`, sender);
    expect(noMessage.status).toBe(404);
    const empty = await k.call("POST", `/teams/${teamId}/channels/${encodeURIComponent(channelId)}/messages`, sender, { body: {} });
    expect(empty.status).toBe(400);
    expect(empty.body.error).toMatchObject({ code: "BadRequest" });
  });

  it("sends inside a $batch, and keeps the message across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await teams({ persistence: store });
    const bearer = await first.token(ALL);
    const { teamId, channelId } = await first.general(bearer);
    const url = `/teams/${teamId}/channels/${encodeURIComponent(channelId)}/messages`;
    const batch = await first.call("POST", "/$batch", bearer, { requests: [{ id: "1", method: "POST", url, headers: { "content-type": "application/json" }, body: { body: { content: "Survives" } } }] });
    const response = (batch.body.responses as Json[])[0] as Json;
    expect(response.status).toBe(201);
    const id = (response.body as Json).id as string;
    await first.sandbox.close();

    const second = await teams({ persistence: store });
    expect((await second.general(bearer)).channelId).toBe(channelId);
    const read = await second.call("GET", `${url}/${id}`, bearer);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id, body: { content: "Survives" }, channelIdentity: { teamId, channelId } });
  });
});

describe("Teams sandbox: a channel's messages, paged", () => {
  it("pages newest first by @odata.nextLink at the sandbox, after a restart too, and refuses a page size Graph refuses", async () => {
    const store = new MemorySandboxStore();
    const first = await teams({ persistence: store });
    const bearer = await first.token(ALL);
    const { teamId, channelId } = await first.general(bearer);
    const path = `/teams/${teamId}/channels/${encodeURIComponent(channelId)}/messages`;
    for (const content of ["a", "b", "c"]) expect((await first.call("POST", path, bearer, { body: { content } })).status).toBe(201);
    const page = await first.call("GET", `${path}?$top=2`, bearer);
    expect(page.status).toBe(200);
    expect((page.body.value as Json[]).map((m) => (m.body as Json).content)).toEqual(["c", "b"]);
    const nextLink = page.body["@odata.nextLink"] as string;
    expect(nextLink.startsWith(`${first.sandbox.url}/v1.0${path}?`)).toBe(true);
    await first.sandbox.close();

    const second = await teams({ persistence: store });
    const rest = await second.call("GET", nextLink.slice(first.sandbox.url.length + "/v1.0".length), bearer);
    expect((rest.body.value as Json[]).map((m) => (m.body as Json).content)).toEqual(["a"]);
    expect(rest.body["@odata.nextLink"]).toBeUndefined();
    const tooMany = await second.call("GET", `${path}?$top=51`, bearer);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ code: "BadRequest", message: "Invalid page size specified: '51'. Must be between 1 and 50 inclusive." });
    const noReader = await second.token(["Team.ReadBasic.All", "Channel.ReadBasic.All"]);
    expect((await second.call("GET", path, noReader)).status).toBe(403);
  });
});
