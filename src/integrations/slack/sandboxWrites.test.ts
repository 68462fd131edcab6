/**
 * The Slack sandbox's first write, chat.postMessage, with the reads that go
 * with it (conversations.list to find a channel id, conversations.history to
 * read the message back), as Slack answers them: HTTP 200 and `ok:false`
 * for every refusal, `missing_scope` with `needed`/`provided`. Called the
 * way @slack/web-api calls (a form body, blocks as a JSON string, the token
 * as a bearer), and with a JSON body. @slack/web-api is not a dev
 * dependency, so the SDK itself is not run here.
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { startSlackSandbox } from "./sandbox.js";

type Json = Record<string, unknown>;
type Channel = { id: string; name: string; is_member: boolean; is_general: boolean };

const slack = closedAfterEach(startSlackSandbox);

async function desk(sandbox: StartedSandbox, body: Json = {}): Promise<string> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** A Web API call as @slack/web-api makes it: POST, form-encoded, objects as JSON strings. */
async function call(sandbox: StartedSandbox, method: string, token: string | undefined, args: Json = {}): Promise<{ status: number; headers: Headers; body: Json }> {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(args)) form.set(key, typeof value === "string" ? value : JSON.stringify(value));
  const response = await fetch(`${sandbox.url}/api/${method}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", connection: "close", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: form.toString(),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Json };
}

async function channelsOf(sandbox: StartedSandbox, token: string): Promise<Channel[]> {
  return (await call(sandbox, "conversations.list", token)).body.channels as Channel[];
}

describe("chat.postMessage", () => {
  it("posts to a channel found with conversations.list, and conversations.history reads it back", async () => {
    const s = await slack();
    const token = await desk(s, { scopes: ["chat:write", "channels:read", "channels:history"] });
    const channels = await channelsOf(s, token);
    const general = channels.find((c) => c.is_general) as Channel;
    expect(general.id).toMatch(/^C[A-Z0-9]{10}$/);
    expect(general).toMatchObject({ name: "general", is_member: true });

    const posted = await call(s, "chat.postMessage", token, { channel: general.id, text: "Deploy finished" });
    expect(posted.status).toBe(200);
    expect(posted.headers.get("x-oauth-scopes")).toBe("chat:write,channels:read,channels:history");
    expect(posted.body).toMatchObject({ ok: true, channel: general.id, message: { type: "message", text: "Deploy finished", bot_id: expect.stringMatching(/^B/), user: expect.stringMatching(/^U/) } });
    expect(posted.body.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect((posted.body.message as Json).ts).toBe(posted.body.ts);

    const history = await call(s, "conversations.history", token, { channel: general.id });
    expect(history.body).toMatchObject({ ok: true, has_more: false, messages: [{ ts: posted.body.ts, text: "Deploy finished" }] });
  });

  it("takes blocks as a JSON string (a form) or an array (a JSON body), and a channel by name", async () => {
    const s = await slack();
    const token = await desk(s);
    const blocks = [{ type: "section", text: { type: "mrkdwn", text: "*Hello*" } }];
    const form = await call(s, "chat.postMessage", token, { channel: "#random", blocks });
    expect(form.body).toMatchObject({ ok: true, message: { blocks, text: "" } });

    const json = await fetch(`${s.url}/api/chat.postMessage`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ channel: "random", text: "fallback", blocks }),
    });
    const body = (await json.json()) as Json;
    expect(body).toMatchObject({ ok: true, channel: form.body.channel, message: { text: "fallback", blocks } });
    // Each message of a channel gets a later ts.
    expect(Number(body.ts)).toBeGreaterThan(Number(form.body.ts));
  });

  it("refuses as Slack does: HTTP 200, ok:false and the code", async () => {
    const s = await slack();
    const token = await desk(s);
    const lab = (await channelsOf(s, token)).find((c) => c.name === "sandbox-lab") as Channel;
    expect(lab.is_member).toBe(false);
    const cases: [Json, string][] = [
      [{ text: "no channel" }, "channel_not_found"],
      [{ channel: "C0NOSUCHONE", text: "x" }, "channel_not_found"],
      [{ channel: "general" }, "no_text"],
      [{ channel: "general", text: "" }, "no_text"],
      [{ channel: "general", blocks: "[{not json" }, "invalid_blocks_format"],
      [{ channel: "general", blocks: [{ text: "no type" }] }, "invalid_blocks"],
      [{ channel: "general", text: "x".repeat(40_001) }, "msg_too_long"],
      [{ channel: lab.id, text: "not invited" }, "not_in_channel"],
    ];
    for (const [args, error] of cases) {
      const answer = await call(s, "chat.postMessage", token, args);
      expect(answer.status, error).toBe(200);
      expect(answer.body, error).toMatchObject({ ok: false, error });
      expect(answer.headers.get("x-slack-failure")).toBe(error);
    }
  });

  it("needs chat:write, and says so with needed and provided", async () => {
    const s = await slack();
    const token = await desk(s, { scopes: ["channels:read"] });
    const answer = await call(s, "chat.postMessage", token, { channel: "general", text: "hi" });
    expect(answer.body).toEqual({ ok: false, error: "missing_scope", needed: "chat:write", provided: "channels:read" });
    expect(answer.headers.get("x-accepted-oauth-scopes")).toContain("chat:write");
    // chat:write.public lets a bot post where it was never invited.
    const publicToken = await desk(s, { scopes: ["chat:write", "chat:write.public", "channels:read"] });
    const lab = (await channelsOf(s, publicToken)).find((c) => c.name === "sandbox-lab") as Channel;
    expect((await call(s, "chat.postMessage", publicToken, { channel: lab.id, text: "hi" })).body.ok).toBe(true);
  });

  it("refuses a missing, unknown, revoked or expired token", async () => {
    const s = await slack({ tokenRotation: true, accessTokenTtlSeconds: 1 });
    expect((await call(s, "chat.postMessage", undefined, { channel: "general", text: "x" })).body).toMatchObject({ ok: false, error: "not_authed" });
    expect((await call(s, "chat.postMessage", "xoxb-0-0-nope", { channel: "general", text: "x" })).body).toMatchObject({ ok: false, error: "invalid_auth" });
    const revoked = await desk(s);
    await call(s, "auth.revoke", revoked);
    expect((await call(s, "chat.postMessage", revoked, { channel: "general", text: "x" })).body).toMatchObject({ ok: false, error: "token_revoked" });
    const expiring = await desk(s);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await call(s, "chat.postMessage", expiring, { channel: "general", text: "x" })).body).toMatchObject({ ok: false, error: "token_expired" });
  });

  it("keeps the channels and the message across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await slack({ persistence: store });
    const token = await desk(first, { scopes: ["chat:write", "channels:read", "channels:history"] });
    const before = await channelsOf(first, token);
    const posted = await call(first, "chat.postMessage", token, { channel: "general", text: "survives" });
    await first.close();

    const second = await slack({ persistence: store });
    expect((await channelsOf(second, token)).map((c) => c.id)).toEqual(before.map((c) => c.id));
    const history = await call(second, "conversations.history", token, { channel: posted.body.channel as string });
    expect(history.body).toMatchObject({ ok: true, messages: [{ ts: posted.body.ts, text: "survives" }] });
  });
});

describe("conversations.list", () => {
  it("pages with limit and response_metadata.next_cursor, by GET or POST", async () => {
    const s = await slack();
    const token = await desk(s);
    const all = await channelsOf(s, token);
    expect(all).toHaveLength(3);
    const seen: string[] = [];
    let cursor = "";
    do {
      const page = await fetch(`${s.url}/api/conversations.list?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await page.json()) as { ok: boolean; channels: Channel[]; response_metadata: { next_cursor: string } };
      expect(body.ok).toBe(true);
      expect(body.channels.length).toBeLessThanOrEqual(2);
      seen.push(...body.channels.map((c) => c.id));
      cursor = body.response_metadata.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.map((c) => c.id));
    expect((await call(s, "conversations.list", token, { cursor: "bm9wZQ==" })).body).toMatchObject({ ok: false, error: "invalid_cursor" });
    expect((await call(s, "conversations.list", token, { limit: "abc" })).body).toMatchObject({ ok: false, error: "invalid_limit" });
  });

  it("needs channels:read for public channels, groups:read for private ones", async () => {
    const s = await slack();
    const token = await desk(s, { scopes: ["chat:write"] });
    expect((await call(s, "conversations.list", token)).body).toEqual({ ok: false, error: "missing_scope", needed: "channels:read", provided: "chat:write" });
    const reader = await desk(s, { scopes: ["channels:read"] });
    expect((await call(s, "conversations.list", reader, { types: "public_channel,private_channel" })).body).toMatchObject({ ok: false, error: "missing_scope", needed: "groups:read" });
  });
});
