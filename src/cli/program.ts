/**
 * The CLI's commands, declared with commander: what each takes, and which
 * file runs it. Mistakes in the arguments become {@link UsageError}s (see
 * command.ts); the entry (src/cli.ts) turns them into exit code 2.
 */
import { Command, Option } from "commander";
import { PROVIDER_IDS } from "../integrations/registry.js";
import { tokenProgram } from "../tokenCommand.js";
import { onRun, refuseExtra, UsageError, wholeNumber, type CommandIo } from "./command.js";
import { LIST_STATUSES, listConnections, type ListOptions } from "./connections.js";
import { health, MAX_CONCURRENCY, type HealthOptions, type HealthTerminal } from "./health.js";
import { migrate } from "./migrate.js";
import { rotateKeys } from "./rotateKeys.js";
import { sandbox } from "./sandbox.js";
import { serve } from "./serve.js";
import { sweep } from "./sweep.js";
import { USAGE } from "./usage.js";

export type Terminal = HealthTerminal;

/** A command configured from the environment alone: any argument is a mistake to say, not to ignore. */
function noArguments(name: string, description: string, run: () => Promise<number>): Command {
  const command = new Command(name).description(description).allowUnknownOption().allowExcessArguments();
  return onRun(command, async (_options, self) => {
    refuseExtra(self, (args) => `${name} takes no arguments (got ${args.map((a) => JSON.stringify(a)).join(" ")}); configuration comes from the environment`);
    return run();
  });
}

const providerOption = () => new Option("--provider <id>", "only this provider's connections").choices(PROVIDER_IDS);

export function buildProgram(io: CommandIo, terminal: Terminal): Command {
  const program = new Command("autoflow-integrations").description("AutoFlow Integrations: the service, and runbook commands beside it");
  program.addCommand(noArguments("serve", "run the service (SQLite, sandboxes for unconfigured connectors)", serve));
  program.addCommand(tokenProgram(io));
  program.addCommand(noArguments("migrate", "apply database migrations and exit", () => migrate(io)));
  program.addCommand(noArguments("sweep", "run the refresh-ahead, health and owed-revocation sweeps once and print what they did", () => sweep(io)));
  program.addCommand(
    onRun<{ batchSize?: string }>(
      new Command("rotate-keys").description("rewrap every data key under the active encryption key (online, resumable)").option("--batch-size <n>", "rows per batch (1 to 10000, default 500)"),
      (options) => rotateKeys(options, io),
    ),
  );
  program.addCommand(
    onRun<HealthOptions>(
      new Command("health")
        .description("probe connections at their providers now and record what they answer (exit 0 all ok, 3 some degraded, 1 some down or a probe failed)")
        .option("--all", "every active connection of every user")
        .addOption(providerOption())
        .option("--user <id>", "only this user's connections")
        .addOption(new Option("--concurrency <n>", `probes at once (1 to ${MAX_CONCURRENCY}; default AUTOFLOW_JOB_CONCURRENCY's)`).argParser(wholeNumber(1, MAX_CONCURRENCY)))
        .option("--json", "one JSON document on stdout: each connection's health envelope, and the totals"),
      (options) => health(options, io, terminal),
    ),
  );
  const connections = new Command("connections").description("the connections the vault holds").allowExcessArguments();
  connections.addCommand(
    onRun<ListOptions>(
      new Command("list")
        .description("list connections with their last recorded health (reads the database only)")
        .option("--user <id>", "only this user's connections")
        .addOption(providerOption())
        .addOption(new Option("--status <status>", "only connections whose last health is this (unchecked: never probed)").choices(LIST_STATUSES))
        .option("--include-revoked", "disconnected connections too")
        .option("--json", "one JSON document on stdout"),
      (options) => listConnections(options, io, terminal),
    ),
  );
  // `connections` alone, or with a subcommand it does not have, is a mistake to name.
  program.addCommand(
    onRun(connections, async (_options, self) => {
      throw new UsageError(self.args.length === 0 ? "connections needs a subcommand: list" : `Unknown connections subcommand '${self.args[0] ?? ""}' (there is: list)`);
    }),
  );
  program.addCommand(noArguments("sandbox", "run the sandboxes of every connector without live credentials, on their stable ports, until SIGINT or SIGTERM", () => sandbox(io)));
  // The hand-written usage for the program itself; each command's --help is commander's.
  program.configureHelp({ formatHelp: () => `${USAGE}\n` });
  return program;
}
