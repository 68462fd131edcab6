import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TIER1_ERROR_TYPES, type Tier1ErrorType } from "./contract.js";
import { ERROR_CODES, ErrorCodes, IntegrationError, invalidInput, isIntegrationError, isRetryableType } from "./errors.js";

describe("IntegrationError.retryable", () => {
  const expected: Record<Tier1ErrorType, boolean> = {
    auth: false,
    "rate-limit": true,
    schema: false,
    network: true,
    upstream: true,
  };

  it("covers exactly the contract's five types", () => {
    expect([...TIER1_ERROR_TYPES].sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(Object.entries(expected) as [Tier1ErrorType, boolean][])("%s -> retryable %s", (type, retryable) => {
    const error = new IntegrationError({ type, message: "m" });
    expect(error.retryable).toBe(retryable);
    expect(isRetryableType(type)).toBe(retryable);
    expect(error.toJSON().retryable).toBe(retryable);
  });

  it("is derived from type even when the provider hints otherwise", () => {
    expect(new IntegrationError({ type: "auth", message: "m", providerRetryHint: true }).retryable).toBe(false);
    expect(new IntegrationError({ type: "upstream", message: "m", providerRetryHint: false }).retryable).toBe(true);
  });

  it("carries its fields, a cause, and is recognised", () => {
    const cause = new Error("root");
    const error = new IntegrationError({ type: "rate-limit", message: "slow down", provider: "slack", status: 429, code: "ratelimited", retryAfterSeconds: 3, cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe("IntegrationError");
    expect(error.cause).toBe(cause);
    expect(isIntegrationError(error)).toBe(true);
    expect(isIntegrationError(new Error("x"))).toBe(false);
    expect(error.toJSON()).toMatchObject({ type: "rate-limit", message: "slow down", provider: "slack", status: 429, code: "ratelimited", retryAfterSeconds: 3 });
  });
});

describe("invalidInput", () => {
  it("names the field in its message", () => {
    const error = invalidInput("apiKey", "must start with sk_", "stripe");
    expect(error.message).toBe("apiKey: must start with sk_");
    expect(error.field).toBe("apiKey");
    expect(error.type).toBe("schema");
    expect(error.code).toBe(ErrorCodes.INVALID_INPUT);
    expect(error.provider).toBe("stripe");
    expect(error.retryable).toBe(false);
  });

  it("does not repeat a field the message already starts with", () => {
    expect(invalidInput("code", "code is required").message).toBe("code is required");
  });

  it("names the field even when the message mentions it later", () => {
    expect(invalidInput("state", "the state is too long").message).toMatch(/^state: /);
  });
});

describe("the one list of error codes", () => {
  it("is where every code the service raises is written: no code string literal in the shared layer, the server or the sync", () => {
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const folders = ["integrations/shared", "server", "integrations/jira/sync", "store", "jobs", "cli"];
    const offenders: string[] = [];
    for (const folder of folders) {
      for (const file of readdirSync(join(root, folder), { recursive: true, encoding: "utf8" })) {
        if (!file.endsWith(".ts") || file.endsWith(".test.ts") || file === "errors.ts") continue;
        const text = readFileSync(join(root, folder, file), "utf8");
        // ("custom" is zod's issue code, not ours.)
        for (const match of text.matchAll(/\bcode: "([a-z_]+)"/g)) if (match[1] !== "custom") offenders.push(`${folder}/${file}: ${match[1]}`);
      }
    }
    expect(offenders).toEqual([]);
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect(ERROR_CODES).toContain("unknown_provider");
  });
});
