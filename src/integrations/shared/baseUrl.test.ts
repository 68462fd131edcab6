/**
 * The base-URL guard's decisions. No test connects anywhere: names resolve
 * through a stub resolver, and only the decision is checked.
 */
import { describe, expect, it } from "vitest";
import { IntegrationError } from "./errors.js";
import { checkBaseUrl, nonPublicReason, type Resolver } from "./baseUrl.js";

/** A stub DNS: public names resolve to documentation-free public addresses; others as listed. */
const DNS: Record<string, string[]> = {
  "sentry.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
  "jira.acme.io": ["104.16.1.1"],
  "rebind.attacker.test": ["93.184.215.14", "127.0.0.1"],
  "metadata.attacker.test": ["169.254.169.254"],
  "v6local.attacker.test": ["fd00::1"],
  "mapped.attacker.test": ["::ffff:10.0.0.1"],
  "cgnat.attacker.test": ["100.64.1.1"],
};
const resolve: Resolver = async (host) => {
  const found = DNS[host.toLowerCase()];
  if (!found) throw new Error("ENOTFOUND");
  return found;
};
const policy = { allowlist: [], resolve };

const HOSTILE: readonly string[] = [
  // loopback, every spelling
  "https://127.0.0.1",
  "https://127.1",
  "https://127.0.0.1:8443/api",
  "https://0x7f.0.0.1",
  "https://0x7f000001",
  "https://2130706433",
  "https://017700000001",
  "https://0177.0.0.1",
  "https://%31%32%37.0.0.1",
  "https://[::1]",
  "https://[0:0:0:0:0:0:0:1]",
  "https://localhost",
  "https://LOCALHOST.",
  "https://api.localhost",
  // unspecified
  "https://0.0.0.0",
  "https://0",
  "https://[::]",
  // private, CGNAT, link-local, metadata
  "https://10.0.0.1",
  "https://172.16.5.4",
  "https://172.31.255.255",
  "https://192.168.1.1",
  "https://100.64.0.1",
  "https://100.127.255.254",
  "https://169.254.169.254/latest/meta-data",
  "https://[fe80::1]",
  "https://[fd00::1]",
  "https://[fc00::abcd]",
  // IPv4 inside IPv6
  "https://[::ffff:127.0.0.1]",
  "https://[::ffff:7f00:1]",
  "https://[::ffff:10.0.0.1]",
  "https://[::127.0.0.1]",
  "https://[64:ff9b::a9fe:a9fe]",
  "https://[2002:c0a8:101::1]",
  // multicast, broadcast, documentation, reserved
  "https://224.0.0.1",
  "https://255.255.255.255",
  "https://[ff02::1]",
  "https://192.0.2.10",
  "https://240.0.0.1",
  // names that resolve inward, or not at all
  "https://rebind.attacker.test",
  "https://metadata.attacker.test",
  "https://v6local.attacker.test",
  "https://mapped.attacker.test",
  "https://cgnat.attacker.test",
  "https://does-not-exist.example.net",
  "https://intranet",
  "https://printer.local",
  "https://db.internal",
  // wrong scheme, credentials, garbage
  "http://sentry.example.com",
  "ftp://sentry.example.com",
  "file:///etc/passwd",
  "gopher://sentry.example.com",
  "https://user:pass@sentry.example.com",
  "https://sentry.example.com?next=http://127.0.0.1",
  "https://sentry.example.com/#frag",
  "sentry.example.com",
  "//sentry.example.com",
  "",
  "https://",
];

describe("checkBaseUrl", () => {
  it(`has at least 30 hostile cases (${HOSTILE.length})`, () => {
    expect(HOSTILE.length).toBeGreaterThanOrEqual(30);
  });

  it.each(HOSTILE.map((url) => [url]))("refuses %j with a schema error that says why", async (url) => {
    const error = await checkBaseUrl(url, policy, { provider: "sentry" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(IntegrationError);
    const e = error as IntegrationError;
    expect(e.type).toBe("schema");
    expect(e.field).toBe("baseUrl");
    expect(e.message).toMatch(/^baseUrl is refused: .{10,}/);
  });

  it.each([
    ["https://sentry.example.com", "https://sentry.example.com"],
    ["https://sentry.example.com/", "https://sentry.example.com"],
    ["https://jira.acme.io/jira/", "https://jira.acme.io/jira"],
    ["https://JIRA.acme.io:443", "https://jira.acme.io"],
    ["https://93.184.215.14", "https://93.184.215.14"],
    ["https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]", "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]"],
  ])("accepts the public %j as %j", async (url, normalised) => {
    await expect(checkBaseUrl(url, policy, { provider: "jira" })).resolves.toBe(normalised);
  });

  it("lets the operator's allow-list through, http included, and nothing else on that host", async () => {
    const allowed = { allowlist: ["http://127.0.0.1:4010"], resolve };
    await expect(checkBaseUrl("http://127.0.0.1:4010", allowed, { provider: "sentry" })).resolves.toBe("http://127.0.0.1:4010");
    await expect(checkBaseUrl("http://127.0.0.1:4010/api/0", allowed, { provider: "sentry" })).resolves.toBe("http://127.0.0.1:4010/api/0");
    await expect(checkBaseUrl("http://127.0.0.1:4011", allowed, { provider: "sentry" })).rejects.toThrow(/refused/);
    await expect(checkBaseUrl("https://127.0.0.1", allowed, { provider: "sentry" })).rejects.toThrow(/loopback/);
  });
});

describe("nonPublicReason", () => {
  it.each([
    ["8.8.8.8", undefined],
    ["1.1.1.1", undefined],
    ["2606:4700:4700::1111", undefined],
    ["::ffff:8.8.8.8", undefined],
    ["2002:0808:0808::1", undefined],
    ["172.32.0.1", undefined],
    ["100.128.0.1", undefined],
    ["127.255.255.255", "loopback"],
    ["::ffff:192.168.0.1", "IPv4-mapped private (RFC 1918)"],
    ["64:ff9b::7f00:1", "NAT64 loopback"],
    ["2002:7f00:1::", "6to4 loopback"],
    ["fe80::1%eth0", "link-local"],
    ["not-an-ip", "not an IP address"],
  ])("%s -> %s", (address, reason) => {
    expect(nonPublicReason(address)).toBe(reason);
  });
});
