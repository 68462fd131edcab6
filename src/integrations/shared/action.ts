/**
 * Typed actions: named operations a workflow calls instead of raw paths.
 * Each is its own file in its connector's folder (`actions/<name>.ts`): a
 * zod input schema, a zod output schema, the provider call(s) it makes
 * through the session, and the answer reduced to a stable shape. The same
 * schemas validate the input (a 400 naming the field), check the output,
 * type the SDK, and give `GET /api/integrations` its JSON Schemas.
 */
import { z } from "zod";
import { pickConnection } from "./connections.js";
import type { ApiCall } from "./connector.js";
import { connectionRevoked, ErrorCodes, IntegrationError } from "./errors.js";
import type { ProviderResponse } from "./http.js";
import type { Session } from "./session.js";
import { checkUserId } from "./userId.js";
import type { ConnectionRecord } from "./vault.js";

/** What an action sees of the connection it runs with. */
export type ActionContext = {
  provider: string;
  /** The connection's public fields (team, account, site...). */
  connection: { id: string; authMethod: string; metadata: Readonly<Record<string, unknown>>; scopes?: readonly string[] };
  /** One call through the session: refreshed, authorized, bound, classified, retried, paced. */
  call(call: ApiCall): Promise<ProviderResponse>;
  /** One call whose JSON answer must have `schema`'s shape (else an upstream error naming what is off). */
  read<T>(call: ApiCall, schema: z.ZodType<T>): Promise<T>;
};

export type Action<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> = {
  readonly description: string;
  /**
   * Scopes any one of which lets the action run, as the provider names them.
   * A connection known to hold none of them is refused before a call is
   * sent, naming what to grant; a connection whose scopes are not known
   * (a pasted key) is left to the provider.
   */
  readonly scopes?: readonly string[];
  readonly input: I;
  readonly output: O;
  run(ctx: ActionContext, input: z.output<I>): Promise<z.input<O>>;
};

// The map's members differ in their input types, which `run` takes (contravariance): any stands for "some action".
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAction = Action<any, any>;
export type ActionMap = Readonly<Record<string, AnyAction>>;

/** An action, typed from its schemas. */
export function defineAction<I extends z.ZodType, O extends z.ZodType>(action: Action<I, O>): Action<I, O> {
  return action;
}

/** The SDK's typed runners of a connector's actions: `integrations.slack.actions.postMessage(userId, input)`. */
export type ActionRunners<A extends ActionMap> = {
  // An action whose every field has a default (or is optional) may be called without an input.
  [K in keyof A]: Record<string, never> extends z.input<A[K]["input"]>
    ? (userId: string, input?: z.input<A[K]["input"]>, options?: { connectionId?: string }) => Promise<z.output<A[K]["output"]>>
    : (userId: string, input: z.input<A[K]["input"]>, options?: { connectionId?: string }) => Promise<z.output<A[K]["output"]>>;
};

/** What `GET /api/integrations` says of each action. */
export type ActionDescription = { name: string; description: string; scopes?: readonly string[]; input: unknown; output: unknown };


export function describeActions(actions: ActionMap): ActionDescription[] {
  return Object.entries(actions).map(([name, action]) => ({
    name,
    description: action.description,
    ...(action.scopes ? { scopes: action.scopes } : {}),
    input: z.toJSONSchema(action.input, { io: "input" }),
    output: z.toJSONSchema(action.output, { io: "output" }),
  }));
}

/** Runs `name` for the user's newest active connection (or the one named): input checked, output checked. */
export async function runAction(
  session: Session,
  actions: ActionMap,
  userId: string,
  name: string,
  rawInput: unknown,
  options?: { connectionId?: string },
): Promise<unknown> {
  checkUserId(userId, session.provider);
  const action = Object.prototype.hasOwnProperty.call(actions, name) ? actions[name] : undefined;
  if (!action) {
    throw new IntegrationError({
      type: "schema",
      code: ErrorCodes.UNKNOWN_ACTION,
      field: "action",
      provider: session.provider,
      message: `${session.name} has no action ${JSON.stringify(name.slice(0, 64))}; its actions: ${Object.keys(actions).join(", ") || "none"}`,
    });
  }
  const input = action.input.safeParse(rawInput ?? {});
  if (!input.success) throw inputError(session.provider, name, input.error);
  const record = await pickConnection(session, userId, options?.connectionId);
  if (record.revokedAt) throw connectionRevoked(session.provider, session.name, record.id);
  const missing = missingScope({ provider: session.provider, name: session.name }, name, action, record.scopes);
  if (missing) throw missing;
  const result = await action.run(connectionContext(session, record, name), input.data);
  const output = action.output.safeParse(result);
  if (!output.success) throw unparsable(session, name, output.error);
  return output.data;
}

/**
 * What a caller of a stored connection works through (an action, the Jira sync): every call through the
 * session, named `<label>: <operation>` in logs and messages, answers checked by shape under that label.
 */
export function connectionContext(session: Session, record: ConnectionRecord, label: string): ActionContext {
  const call = (apiCall: ApiCall) => session.call(record, { ...apiCall, operation: `${label}: ${apiCall.operation ?? `${apiCall.method} ${apiCall.path ?? apiCall.url ?? ""}`}` });
  return {
    provider: session.provider,
    connection: { id: record.id, authMethod: record.authMethod, metadata: record.metadata, scopes: record.scopes },
    call,
    read: async (apiCall, schema) => parseAnswer(session, label, (await call(apiCall)).json, schema),
  };
}


/** The refusal of an action the connection's scopes cannot run, or undefined when they can (or are not known). */
export function missingScope(connector: { provider: string; name: string }, actionName: string, action: Pick<Action, "scopes">, granted: readonly string[]): IntegrationError | undefined {
  if (!action.scopes || granted.length === 0 || action.scopes.some((scope) => granted.includes(scope))) return undefined;
  return new IntegrationError({
    type: "auth",
    code: ErrorCodes.MISSING_SCOPE,
    provider: connector.provider,
    message:
      `${actionName} needs one of the scopes ${action.scopes.join(", ")}; this ${connector.name} connection was granted ${granted.join(", ")}. ` +
      `Add one to AUTOFLOW_${connector.provider.toUpperCase()}_SCOPES and connect again`,
  });
}

/** A provider's JSON answer in the shape an action reads, or an upstream error saying what is off. */
export function parseAnswer<T>(session: Pick<Session, "provider" | "name">, action: string, json: unknown, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw unparsable(session, action, parsed.error);
  return parsed.data;
}

function unparsable(session: Pick<Session, "provider" | "name">, action: string, error: z.ZodError): IntegrationError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? issue.path.map(String).join(".") : "the answer";
  return new IntegrationError({
    type: "upstream",
    code: ErrorCodes.UNPARSABLE_RESPONSE,
    provider: session.provider,
    message: `${session.name} answered ${action} in a shape it does not document (${where}: ${issue?.message ?? "invalid"})`,
  });
}

/** A bad input, naming the field (`input.channel`, `input.to.0`) and what is wrong with it. */
function inputError(provider: string, action: string, error: z.ZodError): IntegrationError {
  const issues = error.issues.slice(0, 5);
  const pathOf = (issue: z.core.$ZodIssue) => (issue.code === "unrecognized_keys" ? (issue.keys[0] ?? "") : issue.path.map(String).join("."));
  const first = issues[0] as z.core.$ZodIssue;
  const field = pathOf(first);
  const message = issues
    .map((issue) => (issue.code === "unrecognized_keys" ? `unknown field${issue.keys.length === 1 ? "" : "s"} ${issue.keys.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 64))).join(", ")}` : `${pathOf(issue) || "input"}: ${issue.message}`))
    .join("; ");
  return new IntegrationError({ type: "schema", code: ErrorCodes.INVALID_INPUT, field: field === "" ? "input" : `input.${field.slice(0, 64)}`, provider, message: `${action}: ${message}` });
}
