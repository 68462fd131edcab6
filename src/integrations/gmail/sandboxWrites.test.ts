/**
 * The Gmail sandbox's first write, creating a label, with the reads that go
 * with it (labels.list, labels.get), as Gmail answers them: the Label
 * resource, 409 "Label name exists or conflicts", 400 INVALID_ARGUMENT, 403
 * insufficient scopes (as users.getProfile answers it), 404 notFound, 401
 * UNAUTHENTICATED. @googleapis/gmail is not a dev dependency, so the SDK
 * itself is not run here; the calls are the ones it makes (JSON bodies,
 * bearer, `me` or the address as userId).
 */
import { describe, expect, it } from "vitest";
import { closedAfterEach } from "../../testing/closedAfterEach.js";
import { MemorySandboxStore } from "../../testing/memorySandboxStore.js";
import type { StartedSandbox } from "../../sandbox/kit.js";
import { startGmailSandbox } from "./sandbox.js";

type Json = Record<string, unknown>;
const SCOPE = "https://www.googleapis.com/auth/";
const LABELS = `${SCOPE}gmail.labels`;

const gmail = closedAfterEach(startGmailSandbox);

async function desk(sandbox: StartedSandbox, scopes: string[], email?: string): Promise<{ accessToken: string; emailAddress: string }> {
  const response = await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes, ...(email ? { email } : {}) }) });
  return (await response.json()) as { accessToken: string; emailAddress: string };
}

async function api(sandbox: StartedSandbox, method: "GET" | "POST", path: string, token: string | undefined, body?: unknown): Promise<{ status: number; headers: Headers; body: Json }> {
  const response = await fetch(`${sandbox.url}/gmail/v1/users${path}`, {
    method,
    headers: { connection: "close", ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Json };
}
const googleError = (code: number, message: string, status: string, reason: string) => ({ error: { code, message, errors: [{ message, domain: "global", reason }], status } });

describe("POST /gmail/v1/users/{userId}/labels", () => {
  it("creates a user label that labels.list and labels.get then find", async () => {
    const s = await gmail();
    const { accessToken } = await desk(s, [LABELS]);
    const created = await api(s, "POST", "/me/labels", accessToken, { name: "AutoFlow/Invoices", labelListVisibility: "labelShow", messageListVisibility: "show" });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({ id: "Label_1", name: "AutoFlow/Invoices", messageListVisibility: "show", labelListVisibility: "labelShow", type: "user" });

    const list = await api(s, "GET", "/me/labels", accessToken);
    expect(list.status).toBe(200);
    const labels = list.body.labels as Json[];
    expect(labels.filter((l) => l.type === "system").map((l) => l.id)).toEqual(expect.arrayContaining(["INBOX", "SENT", "DRAFT", "SPAM", "TRASH", "UNREAD", "STARRED", "IMPORTANT"]));
    expect(labels).toContainEqual({ id: "INBOX", name: "INBOX", type: "system" });
    expect(labels.filter((l) => l.type === "user")).toEqual([created.body]);

    const one = await api(s, "GET", "/me/labels/Label_1", accessToken);
    expect(one.body).toEqual({ ...created.body, messagesTotal: 0, messagesUnread: 0, threadsTotal: 0, threadsUnread: 0 });
    const inbox = await api(s, "GET", "/me/labels/INBOX", accessToken);
    expect(inbox.body).toMatchObject({ id: "INBOX", type: "system", messagesTotal: expect.any(Number) });
  });

  it("takes the account's address as userId, and the next label gets the next id", async () => {
    const s = await gmail();
    const { accessToken, emailAddress } = await desk(s, [`${SCOPE}gmail.modify`], "Person@Example.com");
    expect(emailAddress).toBe("person@example.com");
    await api(s, "POST", "/me/labels", accessToken, { name: "one" });
    const second = await api(s, "POST", `/${encodeURIComponent("Person@Example.com")}/labels`, accessToken, { name: "two" });
    expect(second.body).toEqual({ id: "Label_2", name: "two", type: "user" });
    const other = await api(s, "POST", "/someone.else@example.com/labels", accessToken, { name: "three" });
    expect(other.status).toBe(403);
    expect(other.body).toEqual(googleError(403, "Delegation denied for person@example.com", "PERMISSION_DENIED", "forbidden"));
  });

  it("answers 409 for a name the mailbox has, whatever its case; another mailbox may use it", async () => {
    const s = await gmail();
    const { accessToken } = await desk(s, [LABELS]);
    await api(s, "POST", "/me/labels", accessToken, { name: "Receipts" });
    const again = await api(s, "POST", "/me/labels", accessToken, { name: "receipts" });
    expect(again.status).toBe(409);
    expect(again.body).toEqual(googleError(409, "Label name exists or conflicts", "ABORTED", "aborted"));
    const someoneElse = await desk(s, [LABELS]);
    expect((await api(s, "POST", "/me/labels", someoneElse.accessToken, { name: "Receipts" })).status).toBe(200);
  });

  it("answers 400 INVALID_ARGUMENT for no name, a system label's name or a visibility Gmail does not have", async () => {
    const s = await gmail();
    const { accessToken } = await desk(s, [LABELS]);
    for (const body of [{}, { name: "   " }, { name: "INBOX" }, { name: "Sent" }]) {
      const answer = await api(s, "POST", "/me/labels", accessToken, body);
      expect(answer.status).toBe(400);
      expect(answer.body).toEqual(googleError(400, "Invalid label name", "INVALID_ARGUMENT", "invalidArgument"));
    }
    const visibility = await api(s, "POST", "/me/labels", accessToken, { name: "x", labelListVisibility: "sometimes" });
    expect(visibility.status).toBe(400);
    expect(visibility.body).toMatchObject({ error: { code: 400, status: "INVALID_ARGUMENT", message: expect.stringContaining("label.label_list_visibility") } });
    expect(((await api(s, "GET", "/me/labels", accessToken)).body.labels as Json[]).filter((l) => l.type === "user")).toEqual([]);
  });

  it("needs gmail.labels, gmail.modify or mail.google.com to create; gmail.readonly may only read", async () => {
    const s = await gmail();
    const reader = await desk(s, [`${SCOPE}gmail.readonly`]);
    const refused = await api(s, "POST", "/me/labels", reader.accessToken, { name: "x" });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(refused.body).toEqual({
      error: {
        code: 403,
        message: "Request had insufficient authentication scopes.",
        errors: [{ message: "Insufficient Permission", domain: "global", reason: "insufficientPermissions" }],
        status: "PERMISSION_DENIED",
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            reason: "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            domain: "googleapis.com",
            metadata: { service: "gmail.googleapis.com", method: "caribou.api.proto.MailboxService.CreateLabel" },
          },
        ],
      },
    });
    expect((await api(s, "GET", "/me/labels", reader.accessToken)).status).toBe(200);
    for (const scope of [LABELS, `${SCOPE}gmail.modify`, "https://mail.google.com/"]) {
      const writer = await desk(s, [scope]);
      expect((await api(s, "POST", "/me/labels", writer.accessToken, { name: `by ${scope}` })).status, scope).toBe(200);
    }
    const sender = await desk(s, [`${SCOPE}gmail.send`]);
    expect((await api(s, "GET", "/me/labels", sender.accessToken)).status).toBe(403);
  });

  it("answers 401 for no token, an unknown one, a revoked one and an expired one", async () => {
    const s = await gmail({ accessTokenTtlSeconds: 1 });
    const missing = await api(s, "POST", "/me/labels", undefined, { name: "x" });
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatchObject({ code: 401, status: "UNAUTHENTICATED", errors: [{ reason: "required" }] });
    const unknown = await api(s, "POST", "/me/labels", "ya29.nope", { name: "x" });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toMatchObject({ code: 401, status: "UNAUTHENTICATED", errors: [{ reason: "authError", message: "Invalid Credentials", location: "Authorization", locationType: "header" }] });

    const revoked = await desk(s, [LABELS]);
    await fetch(`${s.url}/revoke`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${revoked.accessToken}` });
    expect((await api(s, "POST", "/me/labels", revoked.accessToken, { name: "x" })).status).toBe(401);
    const expiring = await desk(s, [LABELS]);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expired = await api(s, "POST", "/me/labels", expiring.accessToken, { name: "x" });
    expect(expired.status).toBe(401);
    expect((expired.body.error as { details: Json[] }).details[0]).toMatchObject({ reason: "ACCESS_TOKEN_EXPIRED" });
  });

  it("keeps the label across a restart on the same store", async () => {
    const store = new MemorySandboxStore();
    const first = await gmail({ persistence: store });
    const { accessToken } = await desk(first, [LABELS]);
    const created = await api(first, "POST", "/me/labels", accessToken, { name: "Kept", color: { textColor: "#ffffff", backgroundColor: "#000000" } });
    expect(created.body).toMatchObject({ id: "Label_1", color: { textColor: "#ffffff", backgroundColor: "#000000" } });
    await first.close();

    const second = await gmail({ persistence: store });
    expect((await api(second, "GET", "/me/labels/Label_1", accessToken)).body).toMatchObject(created.body);
    expect((await api(second, "POST", "/me/labels", accessToken, { name: "kept" })).status).toBe(409);
    expect((await api(second, "POST", "/me/labels", accessToken, { name: "Next" })).body.id).toBe("Label_2");
  });
});

describe("GET /gmail/v1/users/{userId}/labels/{id}", () => {
  it("answers 404 notFound for a label the mailbox does not have", async () => {
    const s = await gmail();
    const { accessToken } = await desk(s, [LABELS]);
    const missing = await api(s, "GET", "/me/labels/Label_99", accessToken);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual(googleError(404, "Requested entity was not found.", "NOT_FOUND", "notFound"));
    // Another mailbox's label is not this one's.
    const other = await desk(s, [LABELS]);
    await api(s, "POST", "/me/labels", other.accessToken, { name: "theirs" });
    expect((await api(s, "GET", "/me/labels/Label_1", accessToken)).status).toBe(404);
  });
});
