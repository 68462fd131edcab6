import { describe, expect, it } from "vitest";
import { bindingCookieName, bindingFromCookies, clearBindingCookie, setBindingCookie } from "./bindingCookie.js";

const HTTP = "http://localhost:3000/api/integrations/slack/oauth/callback";
const HTTPS = "https://connect.autoflow.example/autoflow/api/integrations/slack/oauth/callback";
const BINDING = "b".repeat(43);

describe("the browser-binding cookie", () => {
  it("is HttpOnly, SameSite=Lax, scoped to the callback path, and lives as long as the state", () => {
    const header = setBindingCookie({ redirectUri: HTTP, state: "slack_abc", binding: BINDING, maxAgeSeconds: 600 });
    expect(header).toBe(`${bindingCookieName(HTTP, "slack_abc")}=${BINDING}; Max-Age=600; Path=/api/integrations/slack/oauth/callback; HttpOnly; SameSite=Lax`);
    expect(header).not.toMatch(/Secure|Domain/);
  });

  it("is Secure and __Secure- prefixed when the public URL is https, with the path the browser sees", () => {
    const header = setBindingCookie({ redirectUri: HTTPS, state: "slack_abc", binding: BINDING, maxAgeSeconds: 600 });
    expect(header).toMatch(/^__Secure-af_oauth_[A-Za-z0-9_-]{22}=/);
    expect(header).toMatch(/; Path=\/autoflow\/api\/integrations\/slack\/oauth\/callback; HttpOnly; SameSite=Lax; Secure$/);
    expect(clearBindingCookie({ redirectUri: HTTPS, state: "slack_abc" })).toBe(
      `${bindingCookieName(HTTPS, "slack_abc")}=; Max-Age=0; Path=/autoflow/api/integrations/slack/oauth/callback; HttpOnly; SameSite=Lax; Secure`,
    );
  });

  it("has a name of its own for every flow", () => {
    expect(bindingCookieName(HTTP, "slack_abc")).not.toBe(bindingCookieName(HTTP, "slack_abd"));
    expect(bindingCookieName(HTTP, "slack_abc")).toBe(bindingCookieName(HTTP, "slack_abc"));
  });

  it("is read back from a Cookie header among others, and only under the flow's own name", () => {
    const target = { redirectUri: HTTP, state: "slack_abc" };
    const name = bindingCookieName(HTTP, "slack_abc");
    const other = bindingCookieName(HTTP, "slack_other");
    expect(bindingFromCookies(`theme=dark; ${other}=${"o".repeat(43)};${name}=${BINDING} ; x=1`, target)).toBe(BINDING);
    expect(bindingFromCookies(`${other}=${BINDING}`, target)).toBeUndefined();
    expect(bindingFromCookies(`${name}=`, target)).toBeUndefined();
    expect(bindingFromCookies(undefined, target)).toBeUndefined();
    expect(bindingFromCookies(`${name}=first; ${name}=second`, target)).toBe("first");
  });
});
