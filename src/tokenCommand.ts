/**
 * `autoflow-integrations token --user <id> [--expires-in <seconds>]`: a user
 * JWT the local service accepts. It signs with the secret `serve` verifies
 * with: AUTOFLOW_JWT_SECRET, or the one `serve` generated in the data folder,
 * found through the same configuration code (AUTOFLOW_DATA_DIR, default
 * ./data from the folder it runs in). It never makes a secret of its own: a
 * token signed with a secret the service does not hold is only ever a 401.
 */
import { parseArgs } from "node:util";
import { loadConfig } from "./config.js";
import { JWT_SECRET_FILE, loadOrCreateJwtSecret } from "./secrets.js";
import { isValidUserId, mintUserToken, USER_ID_RULE } from "./server/auth.js";

/** A day by default: a working session against the local service, without minting again. */
export const DEFAULT_TOKEN_SECONDS = 24 * 3600;
/** 30 days at most: a token copied into a script or a chat must not stay good for longer. */
export const MAX_TOKEN_SECONDS = 30 * 24 * 3600;

export type CommandIo = {
  env: NodeJS.ProcessEnv;
  out(text: string): void;
  err(text: string): void;
  /** The CLI's usage, printed after a mistake in the flags. */
  usage: string;
};

/** Runs the command; answers the exit code: 0 minted, 1 nothing to sign with, 2 bad flags. */
export async function tokenCommand(args: string[], io: CommandIo): Promise<number> {
  const refuse = (message: string): number => {
    io.err(`${message}\n${io.usage}\n`);
    return 2;
  };
  let values: { user?: string; "expires-in"?: string };
  try {
    ({ values } = parseArgs({ args, options: { user: { type: "string" }, "expires-in": { type: "string" } }, strict: true, allowPositionals: false }));
  } catch (error) {
    return refuse(error instanceof Error ? error.message : String(error));
  }
  if (values.user === undefined) return refuse("--user is required");
  // The very rule the service holds a token's sub to: a token it would refuse is never minted.
  if (!isValidUserId(values.user)) return refuse(`--user must be ${USER_ID_RULE}`);
  const expiresIn = parseSeconds(values["expires-in"]);
  if (expiresIn === undefined) return refuse(`--expires-in must be a whole number of seconds from 1 to ${MAX_TOKEN_SECONDS} (30 days)`);

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
  io.out(`${await mintUserToken(secret, values.user, expiresIn)}\n`);
  return 0;
}

function parseSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return DEFAULT_TOKEN_SECONDS;
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  const seconds = Number(value);
  return seconds >= 1 && seconds <= MAX_TOKEN_SECONDS ? seconds : undefined;
}
