// The operator view: GET /api/operator/overview with the operator token, shown as tables, updated by itself.
import { badge, busy, callApi, complain, el, say, timeOf } from "./common.js";

const TOKEN_KEY = "autoflow.operatorToken";
const POLL_MS = 10_000;
let token = sessionStorage.getItem(TOKEN_KEY);
let timer;
const $ = (id) => document.getElementById(id);

$("operator-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("operator-token").value.trim();
  if (value === "") return complain("Give the operator token first.");
  void busy(event.submitter ?? event.currentTarget.querySelector("button"), () => open(value));
});
$("operator-signout").addEventListener("click", close);
if (token) open(token).catch((error) => complain(error.message));

async function open(candidate) {
  const overview = await callApi(candidate, "GET", "/api/operator/overview").catch((error) => {
    if (error.status === 401 || error.status === 404) close();
    throw error;
  });
  token = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("signin").hidden = true;
  $("overview").hidden = false;
  render(overview);
  say("Operator view open.");
  clearInterval(timer);
  timer = setInterval(() => void reload(), POLL_MS);
}

async function reload() {
  try {
    render(await callApi(token, "GET", "/api/operator/overview"));
  } catch (error) {
    complain(`Could not update: ${error.message}`);
    if (error.status === 401) close();
  }
}

function close() {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  $("overview").hidden = true;
  $("signin").hidden = false;
  $("operator-token").value = "";
}

/** A table with a header row and one row per item; `cells` maps an item to its cells. */
function fill(id, caption, headers, items, cells, empty) {
  const table = $(id);
  const body = items.length === 0 ? [el("tr", {}, el("td", { colspan: headers.length }, empty))] : items.map((item) => el("tr", {}, ...cells(item).map((c) => el("td", {}, c ?? ""))));
  table.replaceChildren(
    el("caption", { class: "sr-only" }, caption),
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...body),
  );
}

function render(o) {
  $("updated").replaceChildren("Generated ", timeOf(o.generatedAt), ".");
  fill(
    "counts",
    "Active connections by connector and health status",
    ["Connector", "Mode", "ok", "degraded", "down", "unchecked", "Total"],
    o.connectors,
    (c) => [c.displayName, c.mode, c.connections.ok, c.connections.degraded, c.connections.down, c.connections.unchecked, c.connections.total],
    "No connectors.",
  );
  const connectionCells = (c) => [c.provider, c.userId, el("code", {}, c.id), badge(c.status), timeOf(c.checkedAt), c.tokenRefreshStatus, c.errorType ?? "", c.message ?? ""];
  const connectionHeaders = ["Connector", "User", "Connection", "Status", "Checked at", "Token refresh", "Error type", "Message"];
  fill("down", "Connections whose health is down", connectionHeaders, o.down, connectionCells, "No connection is down.");
  fill("refresh", "Connections whose token refresh failed for good", connectionHeaders, o.refreshFailures, connectionCells, "No refresh has failed for good.");
  fill(
    "syncs",
    "Jira ticket sync runs",
    ["Connection", "User", "Configured", "Cursor", "Running", "Last run", "Outcome", "Issues"],
    o.ticketSyncs,
    (s) => [
      el("code", {}, s.connectionId),
      s.userId ?? "",
      s.configured ? "yes" : "no",
      timeOf(s.cursorAt),
      s.run ? `since ${new Date(s.run.startedAt ?? Date.now()).toLocaleString()}` : "no",
      s.lastRun ? timeOf(s.lastRun.finishedAt ?? s.lastRun.startedAt) : "never",
      s.lastRun ? (s.lastRun.errorType ? `${s.lastRun.errorType}: ${s.lastRun.error ?? ""}` : "ok") : "",
      s.lastRun?.counts ? Object.entries(s.lastRun.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ") : "",
    ],
    "No ticket sync is configured.",
  );
  fill(
    "owed",
    "Revocations owed at a provider",
    ["Connector", "User", "Connection", "Disconnected at", "Revocation"],
    o.owedRevocations,
    (r) => [r.provider, r.userId, el("code", {}, r.id), timeOf(r.revokedAt), r.revocation ?? "pending"],
    "Nothing is owed.",
  );
}
