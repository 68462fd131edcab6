/**
 * Sentry has no official Node client for its REST API; its own CLI
 * (sentry-cli) calls it with a bearer token and pages by the Link header,
 * following rel="next" while it says results="true". The same here with
 * plain fetch against the Sentry sandbox: the organizations, an
 * organization's projects, a project's issues page by page, and Sentry's
 * DRF error bodies.
 */
import { describe, expect, it } from "vitest";
import { startSentrySandbox } from "../../src/integrations/sentry/sandbox.js";
import { closedAfterEach } from "../../src/testing/closedAfterEach.js";

type Json = Record<string, unknown>;
const start = closedAfterEach(startSentrySandbox);

/** The rel="next" link of a Link header, when it says there are results (sentry-cli's `get_next_cursor` reading). */
function nextLink(header: string | null): string | undefined {
  for (const part of (header ?? "").split(/,\s*(?=<)/)) {
    const url = /^<([^>]+)>/.exec(part)?.[1];
    if (url && /rel="next"/.test(part) && /results="true"/.test(part)) return url;
  }
  return undefined;
}

describe("Sentry's REST API as sentry-cli calls it, against the Sentry sandbox", () => {
  it("lists organizations, an organization's projects, and a project's issues paged by the Link header", async () => {
    const sandbox = await start();
    const credential = (await (await fetch(`${sandbox.url}/_sandbox/credentials`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ scopes: ["org:read", "project:read", "event:read"] }) })).json()) as Json;
    const get = async (url: string) => {
      const res = await fetch(url, { headers: { authorization: `Bearer ${credential.accessToken as string}` } });
      return { status: res.status, link: res.headers.get("link"), body: (await res.json()) as Json & Json[] };
    };
    const orgs = await get(`${sandbox.url}/api/0/organizations/`);
    expect(orgs.status).toBe(200);
    const org = (orgs.body[0] as Json).slug as string;

    const projects = await get(`${sandbox.url}/api/0/organizations/${org}/projects/`);
    expect(projects.body).toEqual([expect.objectContaining({ slug: "sandbox-web", platform: "javascript", status: "active" })]);
    expect(nextLink(projects.link)).toBeUndefined();

    const titles: string[] = [];
    let url: string | undefined = `${sandbox.url}/api/0/projects/${org}/sandbox-web/issues/?limit=1`;
    let pages = 0;
    while (url) {
      const page = await get(url);
      expect(page.status).toBe(200);
      pages += 1;
      for (const issue of page.body) {
        expect(issue).toMatchObject({ id: expect.stringMatching(/^\d+$/), shortId: expect.stringMatching(/^SANDBOX-WEB-/), status: "unresolved", project: { slug: "sandbox-web" }, stats: { "24h": expect.any(Array) } });
        titles.push(issue.title as string);
      }
      url = nextLink(page.link);
    }
    expect(pages).toBe(2);
    expect(titles).toHaveLength(2);

    const missing = await get(`${sandbox.url}/api/0/projects/${org}/no-such-project/issues/`);
    expect(missing).toMatchObject({ status: 404, body: { detail: "The requested resource does not exist" } });
    const badPeriod = await get(`${sandbox.url}/api/0/projects/${org}/sandbox-web/issues/?statsPeriod=7d`);
    expect(badPeriod).toMatchObject({ status: 400, body: { detail: "Invalid stats_period. Valid choices are '', '24h', and '14d'" } });
  });
});
