/**
 * The official Gmail client, @googleapis/gmail (googleapis-common over
 * gaxios, google-auth-library's OAuth2Client for the token), pointed at the
 * Gmail sandbox (`rootUrl`, no retries) and run unchanged: who-am-I, the
 * send-an-email action (a real RFC 5322 message, base64url, as `raw`; and
 * as a `media` upload), the list-and-read actions, and Gmail's error
 * bodies parsed into the client's GaxiosError.
 */
import { auth, gmail, type gmail_v1 } from "@googleapis/gmail";
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../src/testing/memorySandboxStore.js";
import type { StartedSandbox } from "../../src/sandbox/kit.js";
import { startGmailSandbox } from "../../src/integrations/gmail/sandbox.js";

const SCOPE = "https://www.googleapis.com/auth/";
const REDIRECT = "http://localhost:3000/oauth/callback";
const google = closedAfterEach(startGmailSandbox, { redirectUris: [REDIRECT] });

/** An access token from the sandbox's credentials desk (as if minted in the OAuth Playground). */
async function accessToken(sandbox: StartedSandbox, scopes: string[]): Promise<{ accessToken: string; emailAddress: string }> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes: scopes.map((s) => SCOPE + s) }) });
  expect(response.status).toBe(201);
  return (await response.json()) as { accessToken: string; emailAddress: string };
}

/** The client with gmail.googleapis.com moved to the sandbox, an OAuth2Client holding the token, and no retries. */
function client(sandbox: StartedSandbox, token: string): gmail_v1.Gmail {
  const oauth = new auth.OAuth2();
  oauth.setCredentials({ access_token: token });
  return gmail({ version: "v1", auth: oauth, rootUrl: `${sandbox.url}/`, retry: false });
}

/** An RFC 5322 message as an app writes one: CRLF lines, an encoded-word subject, a multipart/alternative body. */
function rfc5322(to: string, subject: string): string {
  return [
    `To: "Ada Lovelace" <${to}>`,
    `Subject: =?UTF-8?B?${Buffer.from(subject, "utf8").toString("base64")}?=`,
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="b1"',
    "",
    "--b1",
    'Content-Type: text/plain; charset="UTF-8"',
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "The deploy finished =E2=9C=93 at 10:42.",
    "--b1",
    'Content-Type: text/html; charset="UTF-8"',
    "",
    "<p>The deploy finished &#10003; at 10:42.</p>",
    "--b1--",
    "",
  ].join("\r\n");
}
const base64url = (text: string): string => Buffer.from(text, "utf8").toString("base64url");
const headerOf = (headers: gmail_v1.Schema$MessagePartHeader[] | undefined, name: string): string | undefined => headers?.find((h) => h.name?.toLowerCase() === name.toLowerCase())?.value ?? undefined;

/** What a GaxiosError carries of Google's error body. */
type GoogleError = { status: number; message: string; response: { data: { error: { code: number; message: string; status: string; errors: { reason: string }[] } } } };

describe("@googleapis/gmail against the Gmail sandbox", () => {
  it("users.getProfile names the token's mailbox", async () => {
    const s = await google();
    const { accessToken: token, emailAddress } = await accessToken(s, ["gmail.readonly"]);
    const { data, status } = await client(s, token).users.getProfile({ userId: "me" });
    expect(status).toBe(200);
    expect(data).toMatchObject({ emailAddress, messagesTotal: expect.any(Number), threadsTotal: expect.any(Number), historyId: expect.stringMatching(/^\d+$/) });
  });

  it("users.messages.send takes a base64url RFC 5322 message; list (in:sent) and get read it back in every format", async () => {
    const s = await google();
    const { accessToken: token, emailAddress } = await accessToken(s, ["gmail.modify"]);
    const api = client(s, token);
    const before = (await api.users.getProfile({ userId: "me" })).data;

    const sent = await api.users.messages.send({ userId: "me", requestBody: { raw: base64url(rfc5322("ada@example.com", "Déploiement terminé")) } });
    expect(sent.status).toBe(200);
    expect(sent.data).toEqual({ id: expect.stringMatching(/^[0-9a-f]{16}$/), threadId: sent.data.id, labelIds: ["SENT"] });
    const after = (await api.users.getProfile({ userId: "me" })).data;
    expect(after.messagesTotal).toBe((before.messagesTotal ?? 0) + 1);
    expect(BigInt(after.historyId as string)).toBeGreaterThan(BigInt(before.historyId as string));

    const list = await api.users.messages.list({ userId: "me", q: "in:sent" });
    expect(list.data).toEqual({ messages: [{ id: sent.data.id, threadId: sent.data.threadId }], resultSizeEstimate: 1 });
    expect((await api.users.messages.list({ userId: "me", labelIds: ["SENT"] })).data.messages?.map((m) => m.id)).toEqual([sent.data.id]);

    const full = (await api.users.messages.get({ userId: "me", id: sent.data.id as string })).data;
    expect(full).toMatchObject({ id: sent.data.id, threadId: sent.data.threadId, labelIds: ["SENT"], snippet: "The deploy finished ✓ at 10:42.", internalDate: expect.stringMatching(/^\d{13}$/) });
    expect(full.payload?.mimeType).toBe("multipart/alternative");
    expect(full.payload?.partId).toBe("");
    // Gmail writes the account's own address as From, and adds a Date and a Message-ID.
    expect(headerOf(full.payload?.headers, "From")).toBe(emailAddress);
    expect(headerOf(full.payload?.headers, "Message-ID")).toMatch(/^<.+@.+>$/);
    expect(headerOf(full.payload?.headers, "Subject")).toBe(`=?UTF-8?B?${Buffer.from("Déploiement terminé").toString("base64")}?=`);
    const [plain, html] = full.payload?.parts ?? [];
    expect(plain).toMatchObject({ partId: "0", mimeType: "text/plain", filename: "" });
    expect(Buffer.from(plain?.body?.data as string, "base64url").toString("utf8")).toBe("The deploy finished ✓ at 10:42.");
    expect(html?.partId).toBe("1");

    const metadata = (await api.users.messages.get({ userId: "me", id: sent.data.id as string, format: "metadata", metadataHeaders: ["To", "Subject"] })).data;
    expect(metadata.payload?.headers?.map((h) => h.name)).toEqual(["To", "Subject"]);
    expect(metadata.payload?.parts).toBeUndefined();
    const minimal = (await api.users.messages.get({ userId: "me", id: sent.data.id as string, format: "minimal" })).data;
    expect(minimal.payload).toBeUndefined();
    expect(minimal.sizeEstimate).toBeGreaterThan(0);
    const raw = (await api.users.messages.get({ userId: "me", id: sent.data.id as string, format: "raw" })).data;
    expect(Buffer.from(raw.raw as string, "base64url").toString("utf8")).toContain("The deploy finished =E2=9C=93 at 10:42.");
  });

  it("a message given as media goes up as multipart/related to the upload path, and lands in the inbox too when sent to oneself", async () => {
    const s = await google();
    const { accessToken: token, emailAddress } = await accessToken(s, ["gmail.send", "gmail.readonly"]);
    const api = client(s, token);
    // googleapis-common moves only the method's URL to a global rootUrl, never its upload URL (apirequest.js rebuilds
    // `options.url` alone): an upload goes to gmail.googleapis.com unless the call itself names the rootUrl.
    const sent = await api.users.messages.send({ userId: "me", requestBody: {}, media: { mimeType: "message/rfc822", body: rfc5322(emailAddress, "Note to self") } }, { rootUrl: `${s.url}/` });
    expect(sent.data.labelIds).toEqual(["UNREAD", "SENT", "INBOX"]);
    const requests = (await (await fetch(`${s.url}/_sandbox/requests`)).json()) as { requests: { method: string; path: string; status: number }[] };
    expect(requests.requests).toContainEqual(expect.objectContaining({ method: "POST", path: "/upload/gmail/v1/users/me/messages/send", status: 200 }));
    const inbox = await api.users.messages.list({ userId: "me", q: "in:inbox is:unread subject:self" });
    expect(inbox.data.messages?.map((m) => m.id)).toEqual([sent.data.id]);
  });

  it("users.messages.list pages the seeded inbox with maxResults and nextPageToken, newest first", async () => {
    const s = await google();
    const api = client(s, (await accessToken(s, ["gmail.readonly"])).accessToken);
    const ids: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const { data } = await api.users.messages.list({ userId: "me", labelIds: ["INBOX"], maxResults: 2, ...(pageToken ? { pageToken } : {}) });
      expect(data.resultSizeEstimate).toBe(3);
      ids.push(...(data.messages ?? []).map((m) => m.id as string));
      pageToken = data.nextPageToken ?? undefined;
      pages += 1;
    } while (pageToken);
    expect(pages).toBe(2);
    expect(ids).toHaveLength(3);
    const dates = await Promise.all(ids.map(async (id) => Number((await api.users.messages.get({ userId: "me", id, format: "minimal" })).data.internalDate)));
    expect(dates).toEqual([...dates].sort((a, b) => b - a));
    const first = (await api.users.messages.get({ userId: "me", id: ids[0] as string, format: "metadata" })).data;
    expect(headerOf(first.payload?.headers, "Subject")).toBe("Lunch on Thursday?");
    // The inbox label's counts and the profile's totals are the mailbox's own.
    expect((await api.users.labels.get({ userId: "me", id: "INBOX" })).data).toMatchObject({ messagesTotal: 3, messagesUnread: 3, threadsTotal: 3 });
    expect((await api.users.getProfile({ userId: "me" })).data).toMatchObject({ messagesTotal: 3, threadsTotal: 3 });
    // Nothing matches: no `messages` at all.
    expect((await api.users.messages.list({ userId: "me", q: "in:sent" })).data).toEqual({ resultSizeEstimate: 0 });
  });

  it("errors come as GaxiosErrors with Google's body: 404 notFound, 400 Recipient address required, 403 insufficient scopes", async () => {
    const s = await google();
    const api = client(s, (await accessToken(s, ["gmail.send"])).accessToken);
    const noRecipient = (await api.users.messages.send({ userId: "me", requestBody: { raw: base64url("Subject: nobody\r\n\r\nhello\r\n") } }).catch((e: unknown) => e)) as GoogleError;
    expect(noRecipient.status).toBe(400);
    expect(noRecipient.message).toBe("Recipient address required");
    expect(noRecipient.response.data.error).toMatchObject({ code: 400, status: "INVALID_ARGUMENT", errors: [{ reason: "invalidArgument" }] });
    const badTo = (await api.users.messages.send({ userId: "me", requestBody: { raw: base64url("To: not an address\r\nSubject: x\r\n\r\nhello\r\n") } }).catch((e: unknown) => e)) as GoogleError;
    expect(badTo.message).toBe("Invalid To header");

    const cannotRead = (await api.users.messages.list({ userId: "me" }).catch((e: unknown) => e)) as GoogleError;
    expect(cannotRead.status).toBe(403);
    expect(cannotRead.response.data.error).toMatchObject({ status: "PERMISSION_DENIED", message: "Request had insufficient authentication scopes." });

    const metadataOnly = client(s, (await accessToken(s, ["gmail.metadata"])).accessToken);
    await expect(metadataOnly.users.messages.list({ userId: "me", q: "in:inbox" })).rejects.toMatchObject({ status: 403, message: "Metadata scope does not support 'q' parameter" });
    expect((await metadataOnly.users.messages.list({ userId: "me", labelIds: ["INBOX"] })).data.resultSizeEstimate).toBe(3);

    const reader = client(s, (await accessToken(s, ["gmail.readonly"])).accessToken);
    const missing = (await reader.users.messages.get({ userId: "me", id: "18c0ffee00000000" }).catch((e: unknown) => e)) as GoogleError;
    expect(missing.status).toBe(404);
    expect(missing.message).toBe("Requested entity was not found.");
    expect(missing.response.data.error).toMatchObject({ code: 404, status: "NOT_FOUND", errors: [{ reason: "notFound" }] });
  });

  it("a sent message and the seeded inbox survive a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await google({ persistence: store });
    const { accessToken: token } = await accessToken(first, ["gmail.modify"]);
    const sent = (await client(first, token).users.messages.send({ userId: "me", requestBody: { raw: base64url(rfc5322("ada@example.com", "Kept")) } })).data;
    const inbox = (await client(first, token).users.messages.list({ userId: "me", q: "in:inbox" })).data.messages;
    await first.close();

    const second = await google({ persistence: store });
    const api = client(second, token);
    expect((await api.users.messages.get({ userId: "me", id: sent.id as string, format: "minimal" })).data).toMatchObject({ id: sent.id, labelIds: ["SENT"] });
    expect((await api.users.messages.list({ userId: "me", q: "in:inbox" })).data.messages).toEqual(inbox);
  });

  it("an OAuth2Client that went through the sandbox's consent and token endpoints refreshes there and sends", async () => {
    const s = await google();
    const endpoints = { oauth2AuthBaseUrl: `${s.url}/o/oauth2/v2/auth`, oauth2TokenUrl: `${s.url}/token`, oauth2RevokeUrl: `${s.url}/revoke`, tokenInfoUrl: `${s.url}/tokeninfo` };
    const oauth = new auth.OAuth2({ clientId: s.clientId, clientSecret: s.clientSecret, redirectUri: REDIRECT, endpoints });
    const consent = await fetch(oauth.generateAuthUrl({ access_type: "offline", scope: [`${SCOPE}gmail.send`], prompt: "consent" }), { redirect: "manual" });
    const code = new URL(consent.headers.get("location") as string).searchParams.get("code") as string;
    const { tokens } = await oauth.getToken(code);
    expect(tokens.refresh_token).toMatch(/^1\/\//);
    // An expired access token: the client refreshes it at the sandbox's token endpoint before the call.
    oauth.setCredentials({ refresh_token: tokens.refresh_token as string, access_token: "ya29.expired", expiry_date: Date.now() - 1000 });
    const api = gmail({ version: "v1", auth: oauth, rootUrl: `${s.url}/`, retry: false });
    const sent = await api.users.messages.send({ userId: "me", requestBody: { raw: base64url(rfc5322("grace@navy.example", "Refreshed")) } });
    expect(sent.data.labelIds).toEqual(["SENT"]);
    expect(oauth.credentials.access_token).toMatch(/^ya29\./);
    expect(oauth.credentials.access_token).not.toBe("ya29.expired");
  });
});
