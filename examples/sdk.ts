/**
 * The SDK on its own, offline: a vault in a SQLite file, every connector on
 * its local sandbox, a Slack OAuth flow bound to the browser that began it,
 * a Stripe key from the sandbox's credentials desk, then test, health, a
 * call through the connection (`request`) and typed actions.
 *
 *   npx tsx examples/sdk.ts
 *
 * With real providers, `settings` come from `resolveSettings` with each
 * provider's client id and secret instead of from the sandboxes, and the
 * user's browser opens `authUrl` and comes back to your callback route.
 * test/e2e/examples.test.ts runs this file.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBrowserBinding, createIntegrations, openStore } from "autoflow-integrations";
import { startSandboxes } from "autoflow-integrations/sandboxes";

const dataDir = mkdtempSync(join(tmpdir(), "autoflow-example-"));
// In production: the same AUTOFLOW_ENCRYPTION_KEY on every instance (openssl rand -base64 32).
const key = randomBytes(32);
const store = await openStore({ sqlitePath: join(dataDir, "autoflow.db"), keys: [key] });
const local = await startSandboxes({ publicUrl: "http://localhost:3000" });
try {
  const integrations = createIntegrations({ vault: store.vault, sealer: store.keyring, settings: local.settings, baseUrlAllowlist: local.baseUrlAllowlist });

  // OAuth: begin, bound to the user's browser (keep `binding` there, in an HttpOnly cookie).
  const binding = createBrowserBinding();
  const { authUrl, state } = integrations.slack.beginOAuth("alice", { browserBinding: binding });
  // The user approves at authUrl and the provider sends the browser back with a code;
  // the sandbox approves a plain GET at once.
  const consent = await fetch(authUrl, { redirect: "manual" });
  const code = new URL(consent.headers.get("location") ?? "").searchParams.get("code") ?? "";
  // Your callback route reads the cookie and completes with it.
  const slack = await integrations.slack.completeOAuth({ code, state, browserBinding: binding });
  console.log(`slack connected: ${slack.id} team ${slack.teamId}, token ${slack.tokenMasked}`);

  // A key the user pastes (here: from the Stripe sandbox's credentials desk).
  const desk = await fetch(`${local.sandboxes.stripe.url}/_sandbox/credentials?form=connect`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const { apiKey } = (await desk.json()) as { apiKey: string };
  const stripe = await integrations.stripe.connectApiKey({ userId: "alice", apiKey });
  console.log(`stripe connected: ${stripe.id} account ${stripe.accountId}`);

  console.log(`slack test: ${JSON.stringify(await integrations.slack.testConnection("alice"))}`);
  const health = await integrations.stripe.health("alice");
  console.log(`stripe health: ${health.status}`);

  // Any call the connector has no action for, through the connection: relative to its API base, authorized for you.
  const created = await integrations.stripe.request("alice", {
    method: "POST",
    path: "/v1/customers",
    headers: { "content-type": "application/x-www-form-urlencoded", "idempotency-key": `example-${Date.now()}` },
    body: "email=ada%40example.com&name=Ada",
  });
  const customer = JSON.parse(Buffer.from(created.body).toString("utf8")) as { id: string };
  console.log(`stripe request: ${created.status} customer ${customer.id}`);

  // Typed actions: inputs and outputs typed from the actions' own schemas.
  const { channels } = await integrations.slack.actions.listConversations("alice", { limit: 10 });
  const general = channels.find((c) => c.isMember) ?? channels[0];
  const posted = await integrations.slack.actions.postMessage("alice", { channel: general?.id ?? "", text: "Hello from AutoFlow" });
  console.log(`slack postMessage: ${posted.channel} ${posted.ts}`);
  console.log(`connections: ${(await integrations.slack.listConnections("alice")).length + (await integrations.stripe.listConnections("alice")).length}`);
  console.log(`disconnected: ${await integrations.slack.disconnect("alice", slack.id)}`);
} finally {
  await local.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
}
