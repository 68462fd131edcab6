/**
 * `autoflow-integrations token --user <id> [--expires-in <seconds>]`: a user
 * JWT the local service accepts. It signs with the secret `serve` verifies
 * with: AUTOFLOW_JWT_SECRET, or the one `serve` generated in the data folder,
 * found through the same configuration code (AUTOFLOW_DATA_DIR, default
 * ./data from the folder it runs in). It never makes a secret of its own: a
 * token signed with a secret the service does not hold is only ever a 401.
 */
import { Command } from "commander";
import { onRun, refuseExtra, runCommand, UsageError, type CommandIo } from "./cli/command.js";
import { loadConfig } from "./config.js";
import { JWT_SECRET_FILE, loadOrCreateJwtSecret } from "./secrets.js";
import { isValidUserId, mintUserToken, USER_ID_RULE } from "./server/auth.js";

/** A day by default: a working session against the local service, without minting again. */
export const DEFAULT_TOKEN_SECONDS = 24 * 3600;
/** 30 days at most: a token copied into a script or a chat must not stay good for longer. */
export const MAX_TOKEN_SECONDS = 30 * 24 * 3600;

export type { CommandIo } from "./cli/command.js";

/** The `token` command, for the CLI's program (its mistakes are thrown as {@link UsageError}). */
export function tokenProgram(io: CommandIo): Command {
  const command = new Command("token")
    .description("print a user JWT the local service accepts")
    .option("--user <id>", "the user id (the token's sub)")
    .option("--expires-in <seconds>", `lifetime in seconds (default ${DEFAULT_TOKEN_SECONDS}, at most ${MAX_TOKEN_SECONDS})`)
    .allowExcessArguments();
  return onRun<{ user?: string; expiresIn?: string }>(command, async (values, self) => {
    refuseExtra(self, (extra) => `Unexpected argument '${extra[0] ?? ""}'`);
    if (values.user === undefined) throw new UsageError("--user is required");
    // The very rule the service holds a token's sub to: a token it would refuse is never minted.
    if (!isValidUserId(values.user)) throw new UsageError(`--user must be ${USER_ID_RULE}`);
    const expiresIn = parseSeconds(values.expiresIn);
    if (expiresIn === undefined) throw new UsageError(`--expires-in must be a whole number of seconds from 1 to ${MAX_TOKEN_SECONDS} (30 days)`);
    return mint(values.user, expiresIn, io);
  });
}

/** Runs the command on `args` (those after `token`); answers the exit code: 0 minted, 1 nothing to sign with, 2 bad flags. */
export async function tokenCommand(args: string[], io: CommandIo): Promise<number> {
  try {
    return await runCommand(tokenProgram(io), args, io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`${error.message}\n${io.usage}\n`);
    return 2;
  }
}

async function mint(user: string, expiresIn: number, io: CommandIo): Promise<number> {

  const config = loadConfig(io.env);
  let secret = config.jwtSecret;
  if (!secret && config.jwksUrl) {
    io.err(
      "this service takes user tokens signed by the identity provider behind AUTOFLOW_JWKS_URL, and has no AUTOFLOW_JWT_SECRET: get a token from that identity provider\n",
    );
    return 1;
  }
  if (!secret) {
    let local: { secret: string } | undefined;
    try {
      local = loadOrCreateJwtSecret(config.dataDir, false);
    } catch (error) {
      io.err(`cannot read the service's JWT secret in ${config.dataDir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`);
      return 1;
    }
    if (!local) {
      io.err(
        `no JWT secret to sign with: AUTOFLOW_JWT_SECRET is not set and the data folder ${config.dataDir} has no ${JWT_SECRET_FILE}.\n` +
          "The data folder is AUTOFLOW_DATA_DIR (default ./data, under the folder a command runs in), the same for serve and token: " +
          "run token where serve runs, or with serve's AUTOFLOW_DATA_DIR, after serve has started once; or set AUTOFLOW_JWT_SECRET to the service's secret.\n",
      );
      return 1;
    }
    secret = local.secret;
  }
  io.out(`${await mintUserToken(secret, user, expiresIn)}\n`);
  return 0;
}

function parseSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return DEFAULT_TOKEN_SECONDS;
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  const seconds = Number(value);
  return seconds >= 1 && seconds <= MAX_TOKEN_SECONDS ? seconds : undefined;
}
