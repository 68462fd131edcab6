/**
 * The connect and health page in a real browser (Debian's Chromium through
 * playwright-core), by keyboard alone: every control is reached with Tab and
 * worked with Enter, Space or typing. A service on its sandboxes is driven
 * through a full OAuth connect in a popup, a key connect with Jira's site and
 * email, a test, two actions, a throttled health showing `degraded`, the
 * operator view, and a disconnect. The page's screenshot is saved for the
 * README (test-results/, and docs/images/ with AUTOFLOW_UPDATE_SCREENSHOTS=1).
 *
 * CI installs Chromium (.ci/run) and sets AUTOFLOW_TEST_REQUIRE_BROWSER=1, so
 * a missing browser fails there; elsewhere the file says it did not run.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintUserToken } from "../../src/server/auth.js";
import { freePort, killStartedInstances, ROOT, sqliteServeEnv, startInstance, stopInstance, type Instance } from "../../src/testing/processes.js";

/** Debian's Chromium: the wrapper script's binary, or what AUTOFLOW_CHROMIUM names. */
const CHROMIUM = [process.env.AUTOFLOW_CHROMIUM, "/usr/lib/chromium/chromium", "/usr/bin/chromium"].find((p): p is string => !!p && existsSync(p));
const REQUIRED = process.env.AUTOFLOW_TEST_REQUIRE_BROWSER === "1";
if (!CHROMIUM && REQUIRED) throw new Error("AUTOFLOW_TEST_REQUIRE_BROWSER=1 but no Chromium was found (apt-get install -y chromium, or set AUTOFLOW_CHROMIUM)");
if (!CHROMIUM) process.stderr.write("connectPage.test.ts: no Chromium here (apt-get install -y chromium); the browser test did not run\n");

/** The few browser globals the functions run in the page use (this file is compiled without the DOM library; casts are erased). */
type InPage = {
  document: {
    activeElement: { id?: string } | null;
    querySelectorAll(selector: string): ArrayLike<{ id: string; labels?: ArrayLike<unknown> | null; getAttribute(name: string): string | null }>;
  };
  sessionStorage: { getItem(key: string): string | null };
};

const OPERATOR_TOKEN = "operator-token-0123456789abcdef0123456789";
const SCREENSHOT = join(ROOT, "test-results", "connect-page.png");

/** Polls for up to 10 s: the page updates on its own schedule (a poll every few seconds), not the test's. */
const poll = <T>(read: () => Promise<T> | T, options: { timeout?: number } = {}) => expect.poll(read, { timeout: 10_000, ...options });

describe.runIf(CHROMIUM)("the connect and health page, in Chromium, by keyboard", () => {
  let instance: Instance;
  let browser: Browser;
  let page: Page;
  let dataDir: string;
  const violations: string[] = [];
  const foreignRequests: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "autoflow-browser-"));
    const port = await freePort();
    // No AUTOFLOW_JWT_SECRET: the service makes its own, as `npm start` does, and only then offers local sign-in.
    const env: NodeJS.ProcessEnv = { ...(await sqliteServeEnv(dataDir, port, "unused")), AUTOFLOW_OPERATOR_TOKEN: OPERATOR_TOKEN };
    delete env.AUTOFLOW_JWT_SECRET;
    instance = await startInstance(env, port);
    browser = await chromium.launch({
      executablePath: CHROMIUM as string,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    const context = await browser.newContext({ baseURL: `http://localhost:${port}`, viewport: { width: 1360, height: 900 } });
    // Every page of the context: the connect page, the OAuth popup's return page and the operator view.
    const sandboxes = new Set<string>();
    context.on("page", (opened) => {
      opened.on("console", (message) => {
        if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(`${opened.url()}: ${message.text()}`);
      });
      opened.on("request", (request) => {
        const origin = new URL(request.url()).origin;
        // The popup visits the sandbox's consent page, as it would the provider's; everything else stays here.
        if (origin !== `http://localhost:${port}` && !(opened !== page && sandboxes.has(origin))) foreignRequests.push(request.url());
      });
    });
    page = await context.newPage();
    page.on("dialog", (dialog) => void dialog.accept());
    const listed = (await (await fetch(`http://127.0.0.1:${port}/api/integrations`, { headers: { authorization: `Bearer ${await mintUserToken(readFileSync(join(dataDir, "jwt.secret"), "utf8").trim(), "probe")}` } })).json()) as {
      providers: Array<{ sandboxUrl?: string }>;
    };
    for (const p of listed.providers) if (p.sandboxUrl) sandboxes.add(new URL(p.sandboxUrl).origin);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopInstance(instance);
    killStartedInstances();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Tabs from wherever focus is until `target` has it (at most 150 presses): reachable by keyboard, or the test fails. */
  async function tabTo(target: Locator, on: Page = page): Promise<void> {
    const handle = await target.elementHandle();
    for (let i = 0; i < 150; i++) {
      if (await on.evaluate((el) => (globalThis as unknown as InPage).document.activeElement === el, handle)) return;
      await on.keyboard.press("Tab");
    }
    throw new Error(`could not reach ${target.toString()} with Tab`);
  }
  const press = async (target: Locator, key = "Enter") => {
    await tabTo(target);
    await page.keyboard.press(key);
  };
  const typeInto = async (target: Locator, text: string) => {
    await tabTo(target);
    await page.keyboard.press("ControlOrMeta+a");
    await page.keyboard.type(text);
  };
  const notice = () => page.locator("#notice");
  const row = (provider: string) => page.locator(`#connections tbody tr[data-provider="${provider}"]`);
  const sandboxUrl = async (provider: string) => {
    const catalogue = (await page.evaluate(async () => {
      const token = (globalThis as unknown as InPage).sessionStorage.getItem("autoflow.userToken");
      return (await fetch("/api/integrations", { headers: { authorization: `Bearer ${token}` } })).json();
    })) as { providers: Array<{ id: string; sandboxUrl?: string }> };
    return catalogue.providers.find((p) => p.id === provider)?.sandboxUrl as string;
  };

  it("serves the page under a strict CSP, with nothing from another origin", async () => {
    const response = await page.goto("/");
    const csp = response?.headers()["content-security-policy"] ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    await poll(() => page.locator("#local-signin").isVisible()).toBe(true);
  });

  it("signs in as the local user (sandbox mode) and lists every connector with its mode and ways in", async () => {
    await press(page.getByRole("button", { name: /Sign in as the local user/ }));
    await poll(() => page.locator("#connectors > li").count()).toBe(8);
    await poll(() => page.locator("#who").textContent()).toContain("local");
    for (const name of ["Slack", "HubSpot", "Stripe", "Gmail", "Linear", "Sentry", "Microsoft Teams", "Jira"]) {
      const card = page.locator("#connectors > li", { hasText: name }).first();
      expect(await card.textContent()).toContain("sandbox");
    }
    // Every form control has a label a screen reader reads out.
    const unlabelled = await page.evaluate(() =>
      Array.from((globalThis as unknown as InPage).document.querySelectorAll("input, select, textarea"))
        .filter((e) => e.labels?.length === 0 && !e.getAttribute("aria-label"))
        .map((e) => e.id),
    );
    expect(unlabelled).toEqual([]);
  });

  it("connects Slack through the sandbox's OAuth flow in a popup", async () => {
    const popupOpened = page.waitForEvent("popup");
    await press(page.getByRole("button", { name: "Connect Slack with OAuth" }));
    const popup = await popupOpened;
    // The sandbox consents, the callback exchanges the code and the return page reports and closes.
    await popup.waitForEvent("close", { timeout: 15_000 });
    await poll(() => notice().textContent(), { timeout: 10_000 }).toMatch(/Slack is connected \(connection conn_/);
    await poll(() => row("slack").count()).toBe(1);
    expect(await row("slack").textContent()).toContain("oauth2");
  });

  it("connects Jira with an API token, its site and email, from the key form", async () => {
    const jira = await sandboxUrl("jira");
    const credential = (await (await fetch(`${jira}/_sandbox/credentials?form=connect`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as {
      apiKey: string;
      baseUrl: string;
      email: string;
    };
    const card = page.locator('#connectors > li[aria-labelledby="connector-jira"]');
    await press(card.locator("summary", { hasText: "Connect Jira with a key" }));
    await typeInto(card.getByLabel(/Key or token \(api_token/), credential.apiKey);
    await typeInto(card.getByLabel("Site or instance URL"), credential.baseUrl);
    await typeInto(card.getByLabel(/Account email/), credential.email);
    await press(card.getByRole("button", { name: "Connect Jira with this key" }));
    await poll(() => notice().textContent()).toMatch(/Jira is connected \(connection conn_/);
    await poll(() => row("jira").count()).toBe(1);
    expect(await row("jira").textContent()).toContain("api_token");
  });

  it("tests a connection: the row turns ok", async () => {
    await press(row("jira").getByRole("button", { name: /^Test Jira connection/ }));
    await poll(() => notice().textContent()).toMatch(/Jira test passed/);
    await poll(() => row("jira").getAttribute("data-status")).toBe("ok");
    expect(await row("jira").locator(".badge").textContent()).toBe("ok");
  });

  it("runs actions: Slack's listConversations, then postMessage to the channel it listed", async () => {
    await press(row("slack").getByRole("button", { name: /^Run an action with Slack/ }));
    // The form opened with focus on the action picker; typing a name picks it (listConversations' input is all defaults).
    await poll(() => page.evaluate(() => (globalThis as unknown as InPage).document.activeElement?.id)).toBe("action-name");
    await page.keyboard.type("listConversations");
    expect(await page.locator("#action-name").inputValue()).toBe("listConversations");
    await press(page.getByRole("button", { name: "Run", exact: true }));
    await poll(() => page.locator("#action-output").textContent()).toContain('"channels"');
    const listed = JSON.parse((await page.locator("#action-output").textContent()) as string) as { channels: Array<{ id: string }> };
    const channel = listed.channels[0]?.id as string;
    expect(channel).toBeTruthy();
    await tabTo(page.locator("#action-name"));
    await page.keyboard.type("postMessage");
    expect(await page.locator("#action-name").inputValue()).toBe("postMessage");
    await typeInto(page.locator("#action-input"), JSON.stringify({ channel, text: "Hello from the connect page" }));
    await press(page.getByRole("button", { name: "Run", exact: true }));
    await poll(() => page.locator("#action-output").textContent()).toMatch(/"ts"/);
    await poll(() => notice().textContent()).toContain("Slack postMessage ran");
  });

  it("shows a throttled health check as degraded, with the error type and message", async () => {
    const slack = await sandboxUrl("slack");
    await fetch(`${slack}/_sandbox/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ fault: "rate-limit", retryAfterSeconds: 1, times: 1 }) });
    await press(row("slack").getByRole("button", { name: /^Check health of Slack/ }));
    await poll(() => row("slack").getAttribute("data-status")).toBe("degraded");
    const text = (await row("slack").textContent()) ?? "";
    expect(text).toContain("rate-limit");
    expect(text).toMatch(/rate limit exceeded/);
    await poll(() => notice().textContent()).toMatch(/Slack health is degraded/);
    mkdirSync(join(ROOT, "test-results"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    if (process.env.AUTOFLOW_UPDATE_SCREENSHOTS === "1") copyFileSync(SCREENSHOT, join(ROOT, "docs", "images", "connect-page.png"));
  });

  it("shows the operator view behind the operator token: counts, and who is down", async () => {
    const admin = await page.context().newPage();
    try {
      await admin.goto("/admin");
      await tabTo(admin.locator("#operator-token"), admin);
      await admin.keyboard.type(OPERATOR_TOKEN);
      await admin.keyboard.press("Enter");
      await poll(() => admin.locator("#overview").isVisible()).toBe(true);
      const cells = (name: string) => admin.locator("#counts tbody tr", { hasText: name }).locator("td").allTextContents();
      // Connector, mode, ok, degraded, down, unchecked, total: Slack one connection, degraded; Jira one, ok.
      expect(await cells("Slack")).toEqual(["Slack", "sandbox", "0", "1", "0", "0", "1"]);
      expect(await cells("Jira")).toEqual(["Jira", "sandbox", "1", "0", "0", "0", "1"]);
      expect(await admin.locator("#down").textContent()).toContain("No connection is down");
    } finally {
      await admin.close();
    }
  });

  it("disconnects a connection: it leaves the list, and the revocation is reported", async () => {
    await press(row("jira").getByRole("button", { name: /^Disconnect Jira/ }));
    await poll(() => notice().textContent()).toMatch(/Jira connection conn_\S+ is disconnected \(revocation at Jira: /);
    await poll(() => row("jira").count()).toBe(0);
    expect(await row("slack").count()).toBe(1);
  });

  it("signs out, refuses a token it cannot verify, and signs in with a pasted JWT, by keyboard", async () => {
    await press(page.getByRole("button", { name: "Sign out" }));
    await poll(() => page.locator("#signin").isVisible()).toBe(true);
    await typeInto(page.getByLabel("User JWT"), "not.a.token");
    await press(page.getByRole("button", { name: "Sign in", exact: true }));
    await poll(() => page.locator("#problem").textContent()).toMatch(/That token was not accepted/);
    await typeInto(page.getByLabel("User JWT"), await mintUserToken(readFileSync(join(dataDir, "jwt.secret"), "utf8").trim(), "local"));
    await press(page.getByRole("button", { name: "Sign in", exact: true }));
    // The same user: the Slack connection made above is listed again.
    await poll(() => row("slack").count()).toBe(1);
    expect(await page.locator("#who").textContent()).toContain("local");
  });

  it("met no Content Security Policy violation and fetched nothing from another origin", () => {
    expect(violations).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
});
