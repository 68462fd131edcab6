/**
 * SDK overhead: sequential who-am-I calls through the SDK (testConnection)
 * and through its proxy (`request`), over plain `fetch` to the same sandbox
 * and over the provider's official SDK pointed at it, for Stripe and Slack.
 * Mean milliseconds a call, the median of four rounds after a warm-up; the
 * kinds take turns in blocks of 100 calls, so that a busy moment hits each
 * alike. Each block opens with a call that is not timed: what the kind
 * before left to finish after its promise settled (plain fetch leaves its
 * body stream's and socket's bookkeeping) lands on that call, and each timed
 * call follows one of its own kind, as in a loop of one kind. Blocks, not
 * single calls in turn: the garbage a kind makes is collected later, and with
 * turns of one call (or of ten) a kind after plain fetch paid 30 to 90 µs a
 * call of fetch's collections; in blocks of 100 each kind pays for its own.
 */
import { randomBytes } from "node:crypto";
import { WebClient } from "@slack/web-api";
import Stripe from "stripe";
import { createIntegrations, openStore } from "../../src/index.js";
import { startSandboxes } from "../../src/sandboxes.js";
import { figure, median, type Figure } from "./compare.js";

const CALLS = 2_000;
const ROUNDS_OF_CALLS = 4;
/** Timed calls of a kind in a row, after its untimed opening call. */
const BLOCK = 100;

async function timed(calls: number, call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < calls; i++) await call();
  return (performance.now() - started) / calls;
}

export async function sdkOverhead(): Promise<Figure[]> {
  const store = await openStore({ sqlitePath: ":memory:", keys: [randomBytes(32)] });
  const local = await startSandboxes({ publicUrl: "http://localhost:3000" });
  try {
    const integrations = createIntegrations({ vault: store.vault, sealer: store.keyring, settings: local.settings, baseUrlAllowlist: local.baseUrlAllowlist });
    const desk = async (provider: "stripe" | "slack") =>
      (await (await fetch(`${local.sandboxes[provider].url}/_sandbox/credentials?form=connect`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as Record<string, string>;
    const stripeKey = await desk("stripe");
    const slackKey = await desk("slack");
    await integrations.stripe.connectApiKey({ userId: "bench", ...stripeKey });
    await integrations.slack.connectApiKey({ userId: "bench", ...slackKey });
    const stripeToken = (stripeKey.apiKey ?? stripeKey.accessToken) as string;
    const slackToken = (slackKey.accessToken ?? slackKey.apiKey) as string;
    const stripeUrl = new URL(local.sandboxes.stripe.url);
    const stripe = new Stripe(stripeToken, { host: stripeUrl.hostname, port: Number(stripeUrl.port), protocol: "http", maxNetworkRetries: 0, telemetry: false });
    const slack = new WebClient(slackToken, { slackApiUrl: `${local.sandboxes.slack.url}/api/`, retryConfig: { retries: 0 } });
    const fetchStripe = async () => {
      const res = await fetch(`${local.sandboxes.stripe.url}/v1/account`, { headers: { authorization: `Bearer ${stripeToken}` } });
      await res.json();
    };
    const fetchSlack = async () => {
      const res = await fetch(`${local.sandboxes.slack.url}/api/auth.test`, { method: "POST", headers: { authorization: `Bearer ${slackToken}` } });
      await res.json();
    };
    // Whole blocks: a round's timed calls of a kind are a multiple of BLOCK.
    const blocksPerRound = Math.ceil(CALLS / ROUNDS_OF_CALLS / BLOCK);
    const cases = {
      stripeFetch: fetchStripe,
      stripeSdk: () => integrations.stripe.testConnection("bench"),
      stripeProxy: () => integrations.stripe.request("bench", { method: "GET", path: "/v1/account" }),
      stripeOfficial: () => stripe.accounts.retrieveCurrent(),
      slackFetch: fetchSlack,
      slackSdk: () => integrations.slack.testConnection("bench"),
      slackProxy: () => integrations.slack.request("bench", { method: "POST", path: "/auth.test" }),
      slackOfficial: () => slack.auth.test(),
    };
    // Four rounds of a quarter each, CALLS sequential timed calls of every kind in all, after a
    // warm-up round: in turn, a block of each kind at a time, so that a busy moment of the machine
    // hits every kind alike; a block's opening call absorbs the kind before's leftovers, untimed.
    const names = Object.keys(cases) as (keyof typeof cases)[];
    const rounds: Record<keyof typeof cases, number[]> = Object.fromEntries(names.map((n) => [n, []])) as never;
    for (let round = 0; round <= ROUNDS_OF_CALLS; round++) {
      const spent = Object.fromEntries(names.map((n) => [n, 0])) as Record<keyof typeof cases, number>;
      for (let block = 0; block < blocksPerRound; block++) {
        for (const name of names) {
          await cases[name]();
          spent[name] += (await timed(BLOCK, cases[name])) * BLOCK;
        }
      }
      if (round > 0) for (const name of names) rounds[name].push(spent[name] / (blocksPerRound * BLOCK));
    }
    const ms = (key: keyof typeof cases) => Number(median(rounds[key]).toFixed(3));
    const out: Figure[] = [];
    for (const [provider, official] of [["stripe", "stripe-node"], ["slack", "@slack/web-api"]] as const) {
      const base = { name: `plain fetch to the ${provider} sandbox`, value: ms(`${provider}Fetch`) };
      out.push(figure({ section: "sdk", name: `${provider}: plain fetch`, value: base.value, unit: "ms/call" }));
      out.push(figure({ section: "sdk", name: `${provider}: ${official}`, value: ms(`${provider}Official`), unit: "ms/call", baseline: base, better: "lower" }));
      const officialRatio = ms(`${provider}Official`) / base.value;
      for (const [kind, label] of [["Sdk", "SDK testConnection"], ["Proxy", "SDK request (proxy)"]] as const) {
        const f = figure({ section: "sdk", name: `${provider}: ${label}`, value: ms(`${provider}${kind}`), unit: "ms/call", baseline: base, better: "lower", limit: 1.1, target: "≤ 1.10x, below the official SDK" });
        out.push({ ...f, met: (f.met ?? false) && (f.ratio ?? Infinity) < officialRatio });
      }
    }
    return out;
  } finally {
    await local.close();
    await store.close();
  }
}
