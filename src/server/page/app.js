// The connect and health page: sign in, see every connector and every connection with its health, connect
// (OAuth in a popup, or a key), test, check health, run an action, disconnect. Plain DOM, text only.
import { badge, busy, callApi, complain, el, say, timeOf } from "./common.js";

const TOKEN_KEY = "autoflow.userToken";
const CHANNEL = "autoflow-oauth";
const POLL_MS = 4000;
const RETURN_PATH = "/oauth/done";

let token = sessionStorage.getItem(TOKEN_KEY);
/** The connectors as GET /api/integrations describes them, by id. */
let catalogue = new Map();
/** The connections table's rows by connection id: kept, not rebuilt, so focus stays where the keyboard left it. */
const rows = new Map();
let pollTimer;
/** The refresh under way, and whether another was asked for meanwhile (it then runs after, with what is current). */
let refreshing;
let refreshAgain = false;
/** Set when a refresh failed, so the next success clears what it said. */
let refreshFailed = false;
/** The connection the action form runs with. */
let actionTarget;

const $ = (id) => document.getElementById(id);

if (location.pathname === RETURN_PATH) finishFlow();
else start().catch((error) => complain(error.message));

/**
 * The outcome the callback put in the address, kept only when every part has the shape the service gives it
 * (anyone can link to this page with made-up words; those are dropped, never shown).
 */
function outcomeOf(params) {
  const outcome = {
    integration: params.get("integration"),
    status: params.get("status"),
    connectionId: params.get("connectionId"),
    error: params.get("error"),
  };
  if (!/^[a-z]{2,20}$/.test(outcome.integration ?? "")) return undefined;
  if (outcome.status === "connected" && /^conn_[A-Za-z0-9_-]{1,64}$/.test(outcome.connectionId ?? "")) return { integration: outcome.integration, status: "connected", connectionId: outcome.connectionId };
  if (outcome.status === "error" && /^[a-z][a-z0-9_.-]{0,63}$/.test(outcome.error ?? "")) return { integration: outcome.integration, status: "error", error: outcome.error };
  return undefined;
}

/** In the popup the OAuth callback returned to: tell the page the outcome and close; otherwise go back to the page. */
function finishFlow() {
  const params = new URLSearchParams(location.search);
  const outcome = outcomeOf(params);
  if (window.opener && outcome) {
    new BroadcastChannel(CHANNEL).postMessage(outcome);
    say(`${outcome.integration}: ${outcome.status === "connected" ? "connected" : `not connected (${outcome.error})`}. You can close this window.`);
    window.close();
    return;
  }
  location.replace(`/?${params.toString()}`);
}

async function start() {
  // Handlers first, before anything is awaited: a form submitted meanwhile must never fall back to the browser's own submit.
  $("local-button").addEventListener("click", (event) =>
    busy(event.currentTarget, async () => {
      const minted = await callApi(undefined, "POST", "/ui/local-token");
      await signIn(minted.token);
    }),
  );
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (value === "") return complain("Paste a user JWT first.");
    void busy(event.submitter ?? event.currentTarget.querySelector("button"), () => signIn(value));
  });
  $("action-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void busy(event.submitter ?? event.currentTarget.querySelector("button"), runAction);
  });
  $("action-name").addEventListener("change", fillActionInput);
  $("action-close").addEventListener("click", closeActionForm);
  new BroadcastChannel(CHANNEL).addEventListener("message", (event) => {
    // Only when signed in, and only in the shape the service gives.
    const outcome = event.data && outcomeOf(new URLSearchParams(event.data));
    if (!token || !outcome) return;
    tellOutcome(outcome);
    void refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void refresh();
  });
  // Back from a redirect (no popup): the outcome is in the address; said once it is known to be well-formed, then cleared.
  const returned = outcomeOf(new URLSearchParams(location.search));
  if (location.search !== "") history.replaceState(null, "", "/");
  // The page's configuration; without it the page still takes a pasted token.
  const config = await callApi(undefined, "GET", "/ui/config").catch(() => undefined);
  if (config?.localSignIn) {
    $("local-signin").hidden = false;
    $("local-button").textContent = `Sign in as the local user (${config.localSignIn.userId})`;
  }
  if (config?.publicUrl && new URL(config.publicUrl).origin !== location.origin) {
    complain(`This page is open at ${location.origin}, but the service's public address is ${new URL(config.publicUrl).origin}: OAuth flows return there. Open ${config.publicUrl}/ instead.`);
  }
  if (token) await signIn(token);
  if (returned) tellOutcome(returned);
}

function tellOutcome(outcome) {
  const name = catalogue.get(outcome.integration)?.displayName ?? outcome.integration;
  if (outcome.status === "connected") say(`${name} is connected (connection ${outcome.connectionId}).`);
  else complain(`${name} was not connected: ${outcome.error ?? "the flow did not finish"}.`);
}

/** The JWT's subject, for the header (the service checks the token; this only reads it). */
function subjectOf(jwt) {
  try {
    const payload = JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.sub === "string" ? payload.sub : "?";
  } catch {
    return "?";
  }
}

async function signIn(candidate) {
  let listed;
  try {
    listed = await callApi(candidate, "GET", "/api/integrations");
  } catch (error) {
    if (error.status === 401) {
      signOut();
      return complain(`That token was not accepted: ${error.message}`);
    }
    throw error;
  }
  token = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  catalogue = new Map(listed.providers.map((p) => [p.id, p]));
  $("who").replaceChildren(
    el("span", {}, "Signed in as ", el("strong", {}, subjectOf(token))),
    el("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"),
  );
  $("signin").hidden = true;
  $("connections-section").hidden = false;
  $("connectors-section").hidden = false;
  renderConnectors();
  await refresh();
  clearInterval(pollTimer);
  // A hidden tab is not polled; it catches up when shown (visibilitychange).
  pollTimer = setInterval(() => {
    if (!document.hidden) void refresh();
  }, POLL_MS);
  $("connections-title").focus();
}

function signOut() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(pollTimer);
  refreshAgain = false;
  for (const row of rows.values()) row.tr.remove();
  rows.clear();
  $("who").replaceChildren();
  $("signin").hidden = false;
  for (const id of ["connections-section", "connectors-section", "action-section"]) $(id).hidden = true;
  $("token").value = "";
  $("token").focus();
}

function renderConnectors() {
  const list = $("connectors");
  list.replaceChildren(...[...catalogue.values()].map(connectorCard));
}

function connectorCard(provider) {
  const keyMethods = provider.authMethods.filter((m) => m !== "oauth2");
  const card = el(
    "li",
    { "aria-labelledby": `connector-${provider.id}` },
    el("h3", { id: `connector-${provider.id}` }, provider.displayName, " ", el("span", { class: `badge mode-${provider.mode}` }, provider.mode)),
    el("p", { class: "hint" }, `Ways in: ${provider.authMethods.join(", ")}. Actions: ${provider.actions.map((a) => a.name).join(", ") || "none"}.`),
  );
  if (provider.authMethods.includes("oauth2")) {
    card.append(
      el("button", { type: "button", onclick: (event) => busy(event.currentTarget, () => connectOAuth(provider)) }, `Connect ${provider.displayName} with OAuth`),
    );
  }
  if (keyMethods.length > 0) card.append(keyForm(provider, keyMethods));
  return card;
}

function keyForm(provider, methods) {
  const id = (field) => `${provider.id}-${field}`;
  const fields = [
    el("label", { for: id("key") }, `Key or token (${methods.join(" or ")})`),
    el("input", { id: id("key"), name: "apiKey", type: "password", autocomplete: "off", required: true }),
  ];
  if (provider.acceptsBaseUrl) {
    fields.push(el("label", { for: id("baseUrl") }, "Site or instance URL"), el("input", { id: id("baseUrl"), name: "baseUrl", type: "url", autocomplete: "off", placeholder: "https://your-site.example" }));
  }
  if (provider.acceptsEmail) {
    fields.push(el("label", { for: id("email") }, "Account email (with an API token)"), el("input", { id: id("email"), name: "email", type: "email", autocomplete: "off" }));
  }
  const form = el("form", { novalidate: true }, ...fields, el("button", { type: "submit" }, `Connect ${provider.displayName} with this key`));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {};
    for (const input of form.querySelectorAll("input")) if (input.value.trim() !== "") body[input.name] = input.value.trim();
    if (!body.apiKey) return complain(`Give the ${provider.displayName} key or token.`);
    void busy(event.submitter ?? form.querySelector("button"), async () => {
      const connection = await callApi(token, "POST", `/api/integrations/${provider.id}/connections`, body);
      form.reset();
      say(`${provider.displayName} is connected (connection ${connection.id}, ${connection.tokenMasked}).`);
      await refresh();
    });
  });
  return el("details", {}, el("summary", {}, `Connect ${provider.displayName} with a key`), form);
}

async function connectOAuth(provider) {
  // Opened now, in the click, so no popup blocker stops it; pointed at the provider once the flow has begun.
  const popup = window.open("", "autoflow-oauth", "popup,width=560,height=720");
  try {
    const begun = await callApi(token, "POST", `/api/integrations/${provider.id}/oauth/start`, { returnTo: `${location.origin}${RETURN_PATH}` });
    if (!popup) {
      location.assign(begun.authUrl);
      return;
    }
    popup.location.href = begun.authUrl;
    say(`Continue in the ${provider.displayName} window; this page updates when you are back.`);
  } catch (error) {
    popup?.close();
    throw error;
  }
}

/**
 * Reads every connection with its recorded health. A call while one is under way waits for it and then for
 * one more read (the first may have been sent before the change the caller made); an answer for a token
 * that is no longer the signed-in one is dropped.
 */
function refresh() {
  if (!token) return Promise.resolve();
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      const asked = token;
      if (!asked) break;
      try {
        const { connections } = await callApi(asked, "GET", "/api/integrations/connections");
        if (token !== asked) break;
        renderConnections(connections);
        $("updated").replaceChildren("Last updated ", timeOf(new Date().toISOString()), ".");
        if (refreshFailed) {
          refreshFailed = false;
          $("problem").textContent = "";
        }
      } catch (error) {
        if (token !== asked) break;
        if (error.status === 401) {
          signOut();
          complain(`Signed out: ${error.message}`);
          break;
        }
        // Said once, not on every poll while it lasts.
        if (!refreshFailed) complain(`Could not update the connections: ${error.message}`);
        refreshFailed = true;
      }
    } while (refreshAgain);
    refreshing = undefined;
  })();
  return refreshing;
}

function renderConnections(entries) {
  const tbody = $("connections").tBodies[0];
  const seen = new Set();
  let previous;
  for (const entry of entries) {
    const id = entry.connection.id;
    seen.add(id);
    let row = rows.get(id);
    if (!row) {
      row = newRow(entry);
      rows.set(id, row);
      if (previous) previous.after(row.tr);
      else tbody.prepend(row.tr);
    }
    updateRow(row, entry);
    previous = row.tr;
  }
  for (const [id, row] of rows) {
    if (seen.has(id)) continue;
    row.tr.remove();
    rows.delete(id);
  }
  $("no-connections").hidden = entries.length > 0;
  $("connections").hidden = entries.length === 0;
}

function newRow(entry) {
  const provider = catalogue.get(entry.provider);
  const name = provider?.displayName ?? entry.provider;
  const id = entry.connection.id;
  const what = `${name} connection ${id}`;
  const cells = Object.fromEntries(["connector", "connection", "status", "checkedAt", "authMethod", "refresh", "error", "do"].map((k) => [k, el("td")]));
  cells.connector.append(name);
  cells.error.className = "message";
  const target = { provider: entry.provider, connectionId: id, name };
  cells.do.append(
    el("button", { type: "button", class: "secondary", "aria-label": `Test ${what}`, onclick: (e) => busy(e.currentTarget, () => testConnection(target)) }, "Test"),
    el("button", { type: "button", class: "secondary", "aria-label": `Check health of ${what}`, onclick: (e) => busy(e.currentTarget, () => checkHealth(target)) }, "Check health"),
    provider?.actions.length
      ? el("button", { type: "button", class: "secondary", "aria-label": `Run an action with ${what}`, onclick: () => openActionForm(target) }, "Run action")
      : null,
    el("button", { type: "button", class: "danger", "aria-label": `Disconnect ${what}`, onclick: (e) => busy(e.currentTarget, () => disconnect(target)) }, "Disconnect"),
  );
  const tr = el("tr", { "data-connection": id, "data-provider": entry.provider }, ...Object.values(cells));
  return { tr, cells };
}

function updateRow(row, entry) {
  const { connection, health } = entry;
  const provider = catalogue.get(entry.provider);
  const account = (provider?.accountLabel ?? []).map((k) => connection[k]).find((v) => typeof v === "string" || typeof v === "number");
  const status = health?.status ?? "unchecked";
  row.tr.dataset.status = status;
  row.cells.connection.replaceChildren(account === undefined ? "" : el("div", {}, String(account)), el("code", {}, connection.tokenMasked), el("div", { class: "hint" }, connection.id));
  row.cells.status.replaceChildren(badge(status));
  row.cells.checkedAt.replaceChildren(health ? timeOf(health.checkedAt) : "never");
  row.cells.authMethod.replaceChildren(connection.authMethod);
  row.cells.refresh.replaceChildren(health?.tokenRefreshStatus ?? "");
  const details = health?.details;
  row.cells.error.replaceChildren(details?.errorType ? el("div", {}, el("strong", {}, details.errorType), details.message ? `: ${details.message}` : "") : "");
}

async function testConnection(target) {
  const result = await callApi(token, "POST", `/api/integrations/${target.provider}/test?connectionId=${encodeURIComponent(target.connectionId)}`, {}).catch(async (error) => {
    await refresh();
    throw new Error(`${target.name} test failed (${error.type ?? error.status}): ${error.message}`, { cause: error });
  });
  const summary = Object.entries(result).filter(([k]) => !["connectionId", "scopes"].includes(k)).map(([k, v]) => `${k} ${v}`).join(", ");
  say(`${target.name} test passed: ${summary}.`);
  await refresh();
}

async function checkHealth(target) {
  const health = await callApi(token, "GET", `/api/integrations/${target.provider}/health?connectionId=${encodeURIComponent(target.connectionId)}&maxAge=0`);
  const message = health.details?.message ? `: ${health.details.message}` : "";
  say(`${target.name} health is ${health.status}${message}.`);
  await refresh();
}

async function disconnect(target) {
  if (!window.confirm(`Disconnect ${target.name} connection ${target.connectionId}? Its credential is revoked at ${target.name} and erased here.`)) return;
  const report = await callApi(token, "DELETE", `/api/integrations/${target.provider}/connections/${encodeURIComponent(target.connectionId)}`);
  say(`${target.name} connection ${target.connectionId} is disconnected (revocation at ${target.name}: ${report.revocation}${report.note ? `; ${report.note}` : ""}).`);
  if (actionTarget?.connectionId === target.connectionId) closeActionForm();
  await refresh();
  // The row that had focus is gone: focus goes to the list's heading, not to the page's start.
  $("connections-title").focus();
}

function openActionForm(target) {
  actionTarget = target;
  const actions = catalogue.get(target.provider)?.actions ?? [];
  $("action-target").textContent = `With ${target.name} connection ${target.connectionId}.`;
  $("action-name").replaceChildren(...actions.map((a) => el("option", { value: a.name }, a.name)));
  $("action-output").textContent = "";
  fillActionInput();
  $("action-section").hidden = false;
  $("action-name").focus();
}

function closeActionForm() {
  $("action-section").hidden = true;
  const back = actionTarget && rows.get(actionTarget.connectionId)?.tr.querySelector('button[aria-label^="Run an action"]');
  actionTarget = undefined;
  back?.focus();
}

/** The input's skeleton from its JSON Schema: defaults and examples where given, an empty value of each required field's type otherwise. */
function fillActionInput() {
  const action = catalogue.get(actionTarget?.provider)?.actions.find((a) => a.name === $("action-name").value);
  if (!action) return;
  $("action-description").textContent = action.description ?? "";
  $("action-input").value = JSON.stringify(skeleton(action.input), null, 2);
}

function skeleton(schema) {
  if (!schema || typeof schema !== "object") return null;
  if ("default" in schema) return schema.default;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === "object" || schema.properties) {
    const out = {};
    for (const name of schema.required ?? []) out[name] = skeleton(schema.properties?.[name]);
    return out;
  }
  if (schema.anyOf?.length) return skeleton(schema.anyOf[0]);
  return { string: "", number: 0, integer: 0, boolean: false, array: [] }[type] ?? null;
}

async function runAction() {
  if (!actionTarget) return;
  let input;
  try {
    input = JSON.parse($("action-input").value || "{}");
  } catch (error) {
    $("action-input").focus();
    throw new Error(`The input is not JSON: ${error.message}`, { cause: error });
  }
  const name = $("action-name").value;
  const path = `/api/integrations/${actionTarget.provider}/actions/${encodeURIComponent(name)}?connectionId=${encodeURIComponent(actionTarget.connectionId)}`;
  try {
    const output = await callApi(token, "POST", path, input);
    $("action-output").textContent = JSON.stringify(output, null, 2);
    say(`${actionTarget.name} ${name} ran.`);
  } catch (error) {
    $("action-output").textContent = JSON.stringify(error.body ?? { error: { message: error.message } }, null, 2);
    throw new Error(`${actionTarget.name} ${name} failed (${error.type ?? error.status}): ${error.message}`, { cause: error });
  }
}
