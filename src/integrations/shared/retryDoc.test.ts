import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CONNECTORS, RETRY_POLICIES, retryPoliciesOf } from "../registry.js";
import type { RetryPolicy } from "./retry.js";
import { RETRY_DOC_PATH, renderRetryPolicyDoc } from "./retryDoc.js";

const docUrl = new URL("../../../docs/integrations/tier1-retry-policy.md", import.meta.url);

describe("renderRetryPolicyDoc", () => {
  it("points at the committed document", () => {
    expect(docUrl.pathname.endsWith(`/${RETRY_DOC_PATH}`)).toBe(true);
  });

  it("matches the committed docs/integrations/tier1-retry-policy.md exactly (run `npm run docs` if this fails)", () => {
    const committed = readFileSync(docUrl, "utf8");
    expect(renderRetryPolicyDoc(RETRY_POLICIES)).toBe(committed);
  });

  it("renders one budgets row per policy with its numbers in seconds", () => {
    const doc = renderRetryPolicyDoc(RETRY_POLICIES);
    for (const [id, p] of Object.entries(RETRY_POLICIES)) {
      const row = doc.split("\n").find((line) => line.startsWith(`| ${id} |`));
      expect(row, id).toBeDefined();
      expect(row).toContain(`| ${p.attempts} | ${p.baseDelayMs / 1000} s | ${p.capDelayMs / 1000} s | ${p.budgetMs / 1000} s | ${p.maxRetryAfterMs / 1000} s |`);
    }
  });

  it("changes when a number in the table changes", () => {
    const copy: Record<string, RetryPolicy> = structuredClone(RETRY_POLICIES) as Record<string, RetryPolicy>;
    const slack = copy.slack as RetryPolicy;
    copy.slack = { ...slack, attempts: slack.attempts + 1 };
    const changed = renderRetryPolicyDoc(copy);
    expect(changed).not.toBe(renderRetryPolicyDoc(RETRY_POLICIES));
    expect(changed).toContain(`| slack | ${slack.attempts + 1} |`);

    const budget: Record<string, RetryPolicy> = { ...RETRY_POLICIES, stripe: { ...RETRY_POLICIES.stripe, budgetMs: 21_000 } };
    expect(renderRetryPolicyDoc(budget)).not.toBe(renderRetryPolicyDoc(RETRY_POLICIES));
    expect(renderRetryPolicyDoc(budget)).toContain("| 21 s |");
  });

  it("is read from the row each registered connector uses: a connector that changes its row changes the document", () => {
    const stripe = CONNECTORS.stripe;
    const overridden = { ...CONNECTORS, stripe: { ...stripe, definition: { ...stripe.definition, retryPolicy: { ...stripe.definition.retryPolicy, attempts: 7 } } } };
    expect(renderRetryPolicyDoc(retryPoliciesOf(overridden))).toContain("| stripe | 7 |");
    expect(renderRetryPolicyDoc(RETRY_POLICIES)).not.toContain("| stripe | 7 |");
    // And the table is exactly what the definitions hold.
    for (const [id, c] of Object.entries(CONNECTORS)) expect(RETRY_POLICIES[id as keyof typeof CONNECTORS]).toBe(c.definition.retryPolicy);
  });

  it("lists the retried column from the error type", () => {
    const doc = renderRetryPolicyDoc(RETRY_POLICIES);
    expect(doc).toMatch(/^\| auth \| no \|/m);
    expect(doc).toMatch(/^\| schema \| no \|/m);
    expect(doc).toMatch(/^\| rate-limit \| yes \|/m);
    expect(doc).toMatch(/^\| network \| yes \|/m);
    expect(doc).toMatch(/^\| upstream \| yes \|/m);
  });
});
