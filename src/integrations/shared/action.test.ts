import { z } from "zod";
import { describe, expect, it } from "vitest";
import { defineAction, describeActions, missingScope } from "./action.js";

const send = defineAction({
  description: "Sends",
  scopes: ["mail.send", "mail.all"],
  input: z.strictObject({ to: z.email(), limit: z.number().int().default(5) }),
  output: z.object({ id: z.string() }),
  run: async () => ({ id: "1" }),
});

describe("actions", () => {
  it("refuse a connection known to hold none of an action's scopes, naming them and the setting to change", () => {
    const connector = { provider: "acme", name: "Acme" };
    const error = missingScope(connector, "send", send, ["mail.read"]);
    expect(error).toMatchObject({ type: "auth", code: "missing_scope", provider: "acme" });
    expect(error?.message).toContain("mail.send, mail.all");
    expect(error?.message).toContain("AUTOFLOW_ACME_SCOPES");
    expect(missingScope(connector, "send", send, ["mail.read", "mail.all"])).toBeUndefined();
    // Scopes not known (a pasted key): the provider decides.
    expect(missingScope(connector, "send", send, [])).toBeUndefined();
    expect(missingScope(connector, "send", { scopes: undefined }, ["mail.read"])).toBeUndefined();
  });

  it("describe themselves with their scopes and the JSON Schema of input (defaults optional) and output", () => {
    const [described] = describeActions({ send });
    expect(described).toMatchObject({ name: "send", description: "Sends", scopes: ["mail.send", "mail.all"] });
    expect(described?.input).toMatchObject({ type: "object", required: ["to"], additionalProperties: false, properties: { to: { type: "string", format: "email" }, limit: { type: "integer", default: 5 } } });
    expect(described?.output).toMatchObject({ type: "object", required: ["id"] });
  });
});
