import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { maskSecret } from "./mask.js";

/** Token-like characters; `*` is left out because the mask itself is made of it. */
const TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=:";
const secretArb = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 300 });

describe("maskSecret", () => {
  it("shows at most 4 leading and 4 trailing characters, never the whole secret", () => {
    fc.assert(
      fc.property(secretArb, (secret) => {
        const masked = maskSecret(secret);
        expect(masked).not.toContain(secret);
        const match = /^([^*]*)\*\*\*\*([^*]*)$/.exec(masked);
        expect(match, masked).not.toBeNull();
        const [, head = "", tail = ""] = match ?? [];
        expect(head.length).toBeLessThanOrEqual(4);
        expect(tail.length).toBeLessThanOrEqual(4);
        expect(head.length).toBe(tail.length);
        expect(secret.startsWith(head)).toBe(true);
        expect(secret.endsWith(tail)).toBe(true);
        // Never more than a third of the secret is visible.
        expect((head.length + tail.length) * 3).toBeLessThanOrEqual(secret.length);
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    ["a", "****"],
    ["abcde", "****"],
    ["abcdef", "a****f"],
    ["abcdefghijkl", "ab****kl"],
    ["xoxb-1234567890-abcdefghijkl", "xoxb****ijkl"],
    ["sk_test_" + "x".repeat(100) + "WXYZ", "sk_t****WXYZ"],
  ])("masks %j as %j", (secret, masked) => {
    expect(maskSecret(secret)).toBe(masked);
  });
});
