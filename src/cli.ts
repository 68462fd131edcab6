#!/usr/bin/env node
/**
 * autoflow-integrations serve              run the service (SQLite, sandboxes for unconfigured connectors)
 * autoflow-integrations token --user alice  print a user JWT the local service accepts (signed with its secret; a day by default, 30 days at most)
 * autoflow-integrations migrate            apply database migrations and exit
 * autoflow-integrations sweep              run the refresh-ahead and health sweeps once and print what they did
 * autoflow-integrations rotate-keys        rewrap every data key under the active encryption key (online, resumable)
 * autoflow-integrations health --all       probe every active connection now; a table, or --json
 * autoflow-integrations connections list   what the vault holds, with each connection's last health (no provider call)
 * autoflow-integrations sandbox            run the sandboxes alone, on their stable ports
 *
 * The commands are declared in src/cli/program.ts, each run by a file of
 * its own in src/cli/. Exit codes: 0 done, 1 a failure, 2 a mistake in the
 * arguments (said with the usage, never a stack trace); `health` adds 3.
 */
import { runCommand, UsageError, type CommandIo } from "./cli/command.js";
import { buildProgram } from "./cli/program.js";
import { USAGE } from "./cli/usage.js";
import { ConfigError } from "./config.js";

async function main(argv: string[]): Promise<number> {
  const io: CommandIo = { env: process.env, out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text), usage: USAGE };
  // No command at all: the usage, as a mistake (a script that forgot its command must not pass).
  if (argv.length === 0) {
    io.out(`${USAGE}\n`);
    return 2;
  }
  // Colour and the progress bar are for a person at a terminal; a pipe or a file gets plain text.
  const terminal = { colour: process.stdout.isTTY === true && !process.env.NO_COLOR, progress: process.stderr.isTTY === true };
  return runCommand(buildProgram(io, terminal), argv, io);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // A flag the command does not take, one without its value, a value it refuses: the caller's mistake, said without a stack trace.
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof ConfigError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
