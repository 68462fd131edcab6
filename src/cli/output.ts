/**
 * How the runbook commands write: tables for people (cli-table3), colour only
 * on a terminal, logs to stderr so that stdout holds the answer alone (a
 * table, or one JSON document a script can parse).
 */
import { styleText } from "node:util";
import Table from "cli-table3";
import pino from "pino";
import type { Logger } from "pino";
import type { ServiceConfig } from "../config.js";
import { createLogger } from "../server/logging.js";

/** The service's logs at warn unless the operator asked for more detail, on stderr. */
export function stderrLogger(level: ServiceConfig["logLevel"]): Logger {
  return createLogger(level === "info" ? "warn" : level, pino.destination({ fd: 2, sync: true }));
}

const STATUS_COLOURS = { ok: "green", degraded: "yellow", down: "red", unchecked: "gray", failed: "red" } as const;

/** A health status, coloured on a terminal. */
export function paintStatus(status: string, tty: boolean): string {
  const colour = STATUS_COLOURS[status as keyof typeof STATUS_COLOURS];
  return tty && colour ? styleText(colour, status, { validateStream: false }) : status;
}

/** Longest message shown in a table cell; --json carries it whole. */
const MAX_CELL = 80;

const cell = (value: string | undefined): string => {
  const text = (value ?? "").replace(/\s+/g, " ");
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
};

/** A table with `head` and `rows`; unstyled (no ANSI codes at all) off a terminal. */
export function renderTable(head: string[], rows: (string | undefined)[][], tty: boolean): string {
  const table = new Table({ head, style: tty ? { head: ["bold"], border: ["gray"] } : { head: [], border: [] } });
  for (const row of rows) table.push(row.map(cell));
  return table.toString();
}
