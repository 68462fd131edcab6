/** The CLI's usage: what `--help` prints and what follows every mistake in the arguments. */
import { PROVIDER_IDS } from "../integrations/registry.js";

export const USAGE = `usage:
  autoflow-integrations serve
  autoflow-integrations token --user <id> [--expires-in <seconds, default 86400, at most 2592000>]
  autoflow-integrations migrate
  autoflow-integrations sweep
  autoflow-integrations rotate-keys [--batch-size <n>]
  autoflow-integrations health --all [--provider <id>] [--user <id>] [--concurrency <n>] [--json]
  autoflow-integrations health --user <id> --provider <id> [--json]
  autoflow-integrations connections list [--user <id>] [--provider <id>] [--status ok|degraded|down|unchecked] [--include-revoked] [--json]
  autoflow-integrations sandbox

  health       probes connections at their providers now (and records what it saw); exit 0 all ok,
               3 some degraded and none down, 1 some down or a probe failed
  connections  lists what the vault holds (no provider call)
  sandbox      runs the sandboxes of every connector without live credentials, on their stable ports

Configuration comes from the environment (see README): PORT, AUTOFLOW_DATA_DIR,
AUTOFLOW_PUBLIC_URL, AUTOFLOW_JWT_SECRET, AUTOFLOW_ENCRYPTION_KEY, AUTOFLOW_SANDBOX_BASE_PORT,
AUTOFLOW_<PROVIDER>_CLIENT_ID / _CLIENT_SECRET / _AUTHORIZE_URL / _TOKEN_URL / _REVOKE_URL / _API_URL / _SCOPES
with <PROVIDER> one of ${PROVIDER_IDS.map((p) => p.toUpperCase()).join(", ")}.
Providers: ${PROVIDER_IDS.join(", ")}.`;
