/**
 * The official Slack client, @slack/web-api, pointed at the Slack sandbox
 * (`slackApiUrl`, retries off) and run unchanged: who-am-I, the
 * post-a-message action with its read-back, cursor paging, and a platform
 * error parsed as the client parses Slack's own.
 */
import { ErrorCode, WebAPIPlatformError, WebClient, type ConversationsListResponse } from "@slack/web-api";
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { startSlackSandbox } from "../../src/integrations/slack/sandbox.js";

const slack = closedAfterEach(startSlackSandbox);

/** A bot token from the sandbox's credentials desk, as an app's settings page hands one out. */
async function botToken(sandbox: StartedSandbox, scopes: string[]): Promise<string> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "bot", scopes }) });
  expect(response.status).toBe(201);
  return ((await response.json()) as { accessToken: string }).accessToken;
}

/** The client as an app makes it, with its Web API root moved to the sandbox and no retries (a failure shows at once). */
function client(sandbox: StartedSandbox, token: string): WebClient {
  return new WebClient(token, { slackApiUrl: `${sandbox.url}/api/`, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true });
}

describe("@slack/web-api against the Slack sandbox", () => {
  it("auth.test names the workspace and the bot, and the client reads the granted scopes", async () => {
    const s = await slack();
    const token = await botToken(s, ["chat:write", "channels:read"]);
    const who = await client(s, token).auth.test();
    expect(who).toMatchObject({ ok: true, team: "AutoFlow Sandbox", team_id: expect.stringMatching(/^T/), user_id: expect.stringMatching(/^U/), bot_id: expect.stringMatching(/^B/) });
    expect(who.url).toBe("https://autoflow-sandbox.slack.com/");
    // WebClient copies x-oauth-scopes into response_metadata.scopes.
    expect(who.response_metadata?.scopes).toEqual(["chat:write", "channels:read"]);
  });

  it("chat.postMessage posts, and conversations.history reads the message back", async () => {
    const s = await slack();
    const web = client(s, await botToken(s, ["chat:write", "channels:read", "channels:history"]));
    const { channels } = await web.conversations.list({ types: "public_channel" });
    const general = channels?.find((c) => c.is_general);
    expect(general?.id).toMatch(/^C/);

    const blocks = [{ type: "section", text: { type: "mrkdwn", text: "*Deploy* finished" } }];
    const posted = await web.chat.postMessage({ channel: general?.id as string, text: "Deploy finished", blocks });
    expect(posted).toMatchObject({ ok: true, channel: general?.id, message: { type: "message", text: "Deploy finished", blocks } });
    expect(posted.ts).toMatch(/^\d{10}\.\d{6}$/);

    const history = await web.conversations.history({ channel: general?.id as string, limit: 10 });
    expect(history.ok).toBe(true);
    expect(history.messages?.[0]).toMatchObject({ ts: posted.ts, text: "Deploy finished", bot_id: posted.message?.bot_id, blocks });
    expect(history.has_more).toBe(false);
  });

  it("conversations.list pages with cursors: client.paginate follows next_cursor to the last page", async () => {
    const s = await slack();
    const web = client(s, await botToken(s, ["channels:read"]));
    const all = await web.conversations.list({ limit: 100 });
    expect(all.channels?.length).toBe(3);

    const pages: string[][] = [];
    for await (const page of web.paginate("conversations.list", { limit: 2 })) {
      pages.push(((page as ConversationsListResponse).channels ?? []).map((c) => c.name as string));
    }
    expect(pages).toEqual([["general", "random"], ["sandbox-lab"]]);

    // The same by hand: the cursor of the first page is the start of the second.
    const first = await web.conversations.list({ limit: 2 });
    const cursor = first.response_metadata?.next_cursor as string;
    expect(cursor).not.toBe("");
    const second = await web.conversations.list({ limit: 2, cursor });
    expect(second.channels?.map((c) => c.name)).toEqual(["sandbox-lab"]);
    expect(second.response_metadata?.next_cursor).toBe("");
  });

  it("channel_not_found and missing_scope raise the client's platform error with Slack's code and fields", async () => {
    const s = await slack();
    const web = client(s, await botToken(s, ["chat:write"]));
    const notFound = await web.chat.postMessage({ channel: "C0000000000", text: "hello" }).catch((error: unknown) => error);
    expect(notFound).toBeInstanceOf(WebAPIPlatformError);
    expect(notFound).toMatchObject({ code: ErrorCode.PlatformError, data: { ok: false, error: "channel_not_found" } });
    expect((notFound as Error).message).toBe("An API error occurred: channel_not_found");

    const missing = await web.conversations.list().catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(WebAPIPlatformError);
    expect((missing as WebAPIPlatformError).data).toMatchObject({ ok: false, error: "missing_scope", needed: "channels:read", provided: "chat:write" });
  });

  it("a revoked token raises token_revoked; an unknown one invalid_auth", async () => {
    const s = await slack();
    const token = await botToken(s, ["chat:write"]);
    const web = client(s, token);
    expect(await web.auth.revoke()).toMatchObject({ ok: true, revoked: true });
    await expect(web.auth.test()).rejects.toMatchObject({ code: ErrorCode.PlatformError, data: { error: "token_revoked" } });
    await expect(client(s, "xoxb-0-0-unknown").auth.test()).rejects.toMatchObject({ data: { error: "invalid_auth" } });
  });
});
