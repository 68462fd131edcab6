/**
 * What every command of the CLI shares: how a mistake in the arguments is
 * told (a message naming the flag or argument, the usage, exit code 2; never
 * a stack trace), how an action answers its exit code, and where it writes.
 * Parsing is commander's; this file only bends its errors into that shape.
 */
import { CommanderError, InvalidArgumentError, type Command } from "commander";

/** Where a command reads its environment and writes (the process's; tests pass their own). */
export type CommandIo = {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
  /** The CLI's usage, printed after a mistake in the flags. */
  usage: string;
};

/** A mistake in the arguments: told with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The exit code each root command's action answered, read back by {@link runCommand}. */
const exitCodes = new WeakMap<Command, number>();

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}

/** Makes `run` the command's action; what it answers is the process's exit code. */
export function onRun<T>(command: Command, run: (options: T, command: Command) => Promise<number>): Command {
  return command.action(async (...args: unknown[]) => {
    const self = args[args.length - 1] as Command;
    exitCodes.set(rootOf(self), await run(self.opts<T & Record<string, unknown>>(), self));
  });
}

/** Refuses positional arguments (and, with `allowUnknownOption`, unknown flags) by naming the first. */
export function refuseExtra(command: Command, what: (args: string[]) => string): void {
  if (command.args.length > 0) throw new UsageError(what(command.args));
}

/** commander's "error: unknown option '--x'" as a sentence of ours: "Unknown option '--x'". */
function sentence(message: string): string {
  const text = message.replace(/^error: /, "");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Silences commander's own error output and exits on the command and all its subcommands: {@link runCommand} tells them. */
function quiet(command: Command, io: CommandIo): void {
  command.exitOverride();
  command.configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text), outputError: () => undefined });
  for (const sub of command.commands) quiet(sub, io);
}

/**
 * Parses `args` (the user's, without node and the script) and runs the
 * action they name. Answers the action's exit code; 0 after --help; throws
 * {@link UsageError} for a mistake in the arguments (commander's or an action's).
 */
export async function runCommand(command: Command, args: string[], io: CommandIo): Promise<number> {
  quiet(command, io);
  try {
    await command.parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help asked for (--help, `help`): printed already. Help as the answer to a mistake goes to stderr, exit 2.
      if (error.code === "commander.help" || error.code === "commander.helpDisplayed" || error.code === "commander.version") return error.exitCode === 0 ? 0 : 2;
      throw new UsageError(sentence(error.message));
    }
    throw error;
  }
  return exitCodes.get(command) ?? 0;
}

/** A whole number from `min` to `max`, for a flag's argParser: commander names the flag when it refuses. */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^[0-9]{1,9}$/.test(value)) throw new InvalidArgumentError(`It must be a whole number from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`It must be a whole number from ${min} to ${max}.`);
    return n;
  };
}
