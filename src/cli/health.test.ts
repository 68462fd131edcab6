/**
 * The health command's own rules, in process: every connection gets an entry
 * whatever its probe does (a throw is reported, never lost, never stops the
 * others), the exit code follows the worst status, and the table is plain
 * text off a terminal. The command against a real service and its sandboxes
 * is test/e2e/cliRunbook.test.ts.
 */
import { describe, expect, it } from "vitest";
import { IntegrationError } from "../integrations/shared/errors.js";
import type { HealthEnvelope } from "../integrations/shared/healthEnvelope.js";
import type { ConnectionRecord } from "../integrations/shared/vault.js";
import { exitCodeOf, healthReport, probeAll, totalsOf, type HealthEntry } from "./health.js";

const record = (id: string, provider: string, userId = "alice"): ConnectionRecord => ({
  id,
  userId,
  provider,
  authMethod: "oauth2",
  tokenMasked: "xoxb****abcd",
  scopes: [],
  metadata: {},
  hasRefreshToken: false,
  tokenRefreshStatus: "not_applicable",
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
  version: 1,
});

const envelope = (status: HealthEnvelope["status"], errorType?: "auth" | "upstream"): HealthEnvelope => ({
  status,
  checkedAt: "2026-01-02T00:00:00.000Z",
  authMethod: "oauth2",
  tokenRefreshStatus: "not_applicable",
  details: { auth: status !== "down", apiReachable: true, rateLimited: false, ...(errorType ? { errorType, message: `${errorType} trouble` } : {}) },
});

describe("probeAll", () => {
  it("reports each connection: its envelope, or the error its probe threw, without stopping the others", async () => {
    const records = [record("c1", "slack"), record("c2", "slack"), record("c3", "stripe"), record("c4", "stripe"), record("c5", "nowhere")];
    const probed: string[] = [];
    const connectors = {
      slack: {
        health: async (_user: string, options?: { connectionId?: string }) => {
          probed.push(options?.connectionId ?? "");
          if (options?.connectionId === "c2") throw new Error("the refresh lock stayed taken");
          return envelope("ok");
        },
      },
      stripe: {
        health: async (_user: string, options?: { connectionId?: string }) => {
          probed.push(options?.connectionId ?? "");
          if (options?.connectionId === "c4") throw new IntegrationError({ type: "upstream", message: "Stripe answered 500", provider: "stripe" });
          return envelope("down", "auth");
        },
      },
    };
    let ticks = 0;
    const entries = await probeAll(records, connectors, 2, () => ticks++);
    expect(probed.sort()).toEqual(["c1", "c2", "c3", "c4"]);
    expect(ticks).toBe(5);
    const byId = Object.fromEntries(entries.map((e) => [e.connectionId, e]));
    expect(byId.c1).toEqual({ provider: "slack", userId: "alice", connectionId: "c1", health: envelope("ok") });
    expect(byId.c2).toEqual({ provider: "slack", userId: "alice", connectionId: "c2", error: { message: "the refresh lock stayed taken" } });
    expect(byId.c3?.health).toEqual(envelope("down", "auth"));
    expect(byId.c4?.error).toEqual({ type: "upstream", message: "Stripe answered 500" });
    expect(byId.c5?.error?.message).toMatch(/no connector for provider "nowhere"/);
    expect(totalsOf(entries)).toEqual({ connections: 5, ok: 1, degraded: 0, down: 1, failed: 3 });
  });
});

describe("exit codes", () => {
  const totals = (entries: HealthEntry[]) => exitCodeOf(totalsOf(entries));
  const entry = (health?: HealthEnvelope): HealthEntry => ({ provider: "slack", userId: "alice", connectionId: "c", ...(health ? { health } : { error: { message: "x" } }) });
  it.each<[string, HealthEntry[], number]>([
    ["no connections", [], 0],
    ["all ok", [entry(envelope("ok")), entry(envelope("ok"))], 0],
    ["one degraded", [entry(envelope("ok")), entry(envelope("degraded", "upstream"))], 3],
    ["one down", [entry(envelope("degraded", "upstream")), entry(envelope("down", "auth"))], 1],
    ["a probe that failed", [entry(envelope("ok")), entry()], 1],
  ])("%s -> %i", (_name, entries, code) => {
    expect(totals(entries)).toBe(code);
  });
});

describe("healthReport", () => {
  const entries: HealthEntry[] = [
    { provider: "slack", userId: "alice", connectionId: "conn_a", health: envelope("ok") },
    { provider: "jira", userId: "bob", connectionId: "conn_b", health: envelope("down", "auth") },
    { provider: "stripe", userId: "carol", connectionId: "conn_c", error: { type: "network", message: "socket hang up" } },
  ];

  it("is plain text off a terminal, with every column and the summary", () => {
    const text = healthReport(entries, false);
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/\u001b\[/);
    for (const heading of ["provider", "user", "connection", "status", "checked at", "auth method", "token refresh", "error type", "message"]) expect(text).toContain(heading);
    expect(text).toMatch(/jira .*bob .*conn_b .*down .*2026-01-02T00:00:00.000Z .*oauth2 .*not_applicable .*auth .*auth trouble/);
    expect(text).toMatch(/stripe .*carol .*conn_c .*failed .*network .*the probe failed: socket hang up/);
    expect(text.trim().split("\n").at(-1)).toBe("3 connections: 1 ok / 0 degraded / 1 down, 1 probe failed");
  });

  it("colours the status on a terminal", () => {
    // eslint-disable-next-line no-control-regex
    expect(healthReport(entries, true)).toMatch(/\u001b\[3[123]m(ok|down|failed)\u001b\[39m/);
  });

  it("says when there is nothing to probe", () => {
    expect(healthReport([], false)).toBe("no active connections");
  });
});
