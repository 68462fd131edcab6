/**
 * The proxy's guards on what a caller names, decided without a request:
 * every path that could leave the connection's API base, and every header
 * that could authorize, redirect or smuggle, is refused with the field
 * named. (The contract suite proves through every connector that nothing
 * refused reaches the provider.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IntegrationError } from "./errors.js";
import { checkProxyHeaders, checkProxyPath } from "./proxy.js";

const refusal = (fn: () => unknown): IntegrationError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(IntegrationError);
    return error as IntegrationError;
  }
  throw new Error("expected a refusal");
};

describe("checkProxyPath", () => {
  it.each([
    "https://evil.example/x",
    "HTTPS://evil.example/x",
    "javascript:alert(1)",
    "//evil.example/x",
    "x/y",
    "",
    "/a/../b",
    "/a/./b",
    "/..",
    "/a/%2e%2e/b",
    "/a/%2E%2e/b",
    "/a/%252e%252e/b",
    "/a/..%2fb",
    "/a/..%2f..%2fb",
    "/a/..%5cb",
    "/a/..;/b",
    "/a/.;x/b",
    "/a/..%3b/b",
    "/a/%2e%2e;jsessionid=1/b",
    "/a/\uff0e\uff0e/b",
    "/a/%EF%BC%8E%EF%BC%8E/b",
    "/a\\b",
    "/a b",
    "/a\tb",
    "/a#frag",
    "/a/%zz",
    "/a/%00",
    "/a/%0d%0aHost:%20evil",
    `/a/${"%25".repeat(6)}2e%2e/b`,
    `/${"x".repeat(5000)}`,
  ])("refuses %j, naming path", (path) => {
    expect(refusal(() => checkProxyPath(path, "jira"))).toMatchObject({ type: "schema", field: "path", provider: "jira" });
  });

  it.each(["/rest/api/3/myself", "/v1/customers?limit=3", "/chat.postMessage", "/teams/19%3Aabc%40thread.tacv2/channels", "/a/...b/c", "/a/..b", "/a/b..", "/files/%E2%9C%93.txt", "/a;b=c/d"])(
    "takes %j",
    (path) => {
      expect(checkProxyPath(path, "jira")).toBe(path);
    },
  );

  it("never takes a path whose resolution against the base leaves it", () => {
    const base = "https://api.atlassian.com/ex/jira/cloud-1";
    const segment = fc.oneof(fc.constantFrom(".", "..", "%2e", "%2e%2e", "..;", "%2e%2e%3b", "a", "b", "%2f", "%5c", ";x"), fc.string({ maxLength: 3 }));
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 6 }), (segments) => {
        const path = `/${segments.join("/")}`;
        let accepted = false;
        try {
          checkProxyPath(path, "jira");
          accepted = true;
        } catch {
          // refused: fine
        }
        if (!accepted) return;
        const url = new URL(`${base}${path}`);
        expect(url.origin).toBe("https://api.atlassian.com");
        expect(url.pathname.startsWith("/ex/jira/cloud-1/") || url.pathname === "/ex/jira/cloud-1").toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("checkProxyHeaders", () => {
  it.each([
    ["Authorization", "Bearer x"],
    ["proxy-authorization", "x"],
    ["Cookie", "a=b"],
    ["Host", "evil.example"],
    ["Connection", "close"],
    ["Keep-Alive", "timeout=5"],
    ["Transfer-Encoding", "chunked"],
    ["TE", "trailers"],
    ["Upgrade", "websocket"],
    ["Content-Length", "5"],
    ["Expect", "100-continue"],
    ["Forwarded", "for=1.2.3.4"],
    ["X-Forwarded-Host", "evil.example"],
    ["X-HTTP-Method-Override", "DELETE"],
    ["X-Method-Override", "DELETE"],
    ["X-Original-URL", "/admin"],
    ["X-Rewrite-URL", "/admin"],
    ["X-AutoFlow-Error-Type", "schema"],
    ["Sec-Fetch-Site", "none"],
    ["bad name", "x"],
    ["x-a", "1\r\nAuthorization: Bearer x"],
    ["x-a", "nul\u0000"],
    ["x-a", "bell\u0007"],
    ["x-a", "\u0100"],
    ["x-a", "x".repeat(8193)],
  ])("refuses %s: %j, naming it", (name, value) => {
    expect(refusal(() => checkProxyHeaders({ [name]: value }, "slack"))).toMatchObject({ type: "schema", field: `headers.${name}` });
  });

  it("refuses a connector's own account-switching headers, and a name given twice", () => {
    expect(refusal(() => checkProxyHeaders({ "Stripe-Account": "acct_1" }, "stripe", ["stripe-account"]))).toMatchObject({ field: "headers.Stripe-Account" });
    expect(refusal(() => checkProxyHeaders({ Accept: "a", accept: "b" }, "slack"))).toMatchObject({ field: "headers.accept" });
  });

  it("takes ordinary headers, lower-cased, with obs-text and tabs", () => {
    expect(checkProxyHeaders({ Accept: "application/json", "Idempotency-Key": "k1", "If-None-Match": '"v1"', "X-Note": "caf\u00e9\tok" }, "stripe")).toEqual({
      accept: "application/json",
      "idempotency-key": "k1",
      "if-none-match": '"v1"',
      "x-note": "caf\u00e9\tok",
    });
  });
});
