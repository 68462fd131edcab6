import { describe, expect, it } from "vitest";
import { buildMessage, encodeHeaderValue, rawMessage } from "./rfc5322.js";

describe("the RFC 5322 message of a Gmail send", () => {
  const date = new Date(Date.UTC(2026, 11, 2, 10, 0, 0));

  it("writes CRLF headers, a base64 text body, and base64url as raw", () => {
    const text = buildMessage({ from: "me@example.com", to: ["a@example.com", "b@example.com"], subject: "Hello", text: "Hi there" }, date);
    expect(text.split("\r\n").slice(0, 8)).toEqual([
      "From: me@example.com",
      "To: a@example.com,",
      " b@example.com",
      "Subject: Hello",
      "Date: Wed, 02 Dec 2026 10:00:00 +0000",
      "MIME-Version: 1.0",
      'Content-Type: text/plain; charset="UTF-8"',
      "Content-Transfer-Encoding: base64",
    ]);
    expect(text.endsWith(`\r\n\r\n${Buffer.from("Hi there").toString("base64")}`)).toBe(true);
    expect(text).not.toMatch(/[^\r]\n/);
    const raw = rawMessage({ to: ["a@example.com"], subject: "S", text: "T" }, date);
    expect(raw).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(Buffer.from(raw, "base64url").toString("utf8")).toBe(buildMessage({ to: ["a@example.com"], subject: "S", text: "T" }, date));
  });

  it("encodes a non-ASCII subject as UTF-8 encoded-words of at most 75 characters that decode back", () => {
    const subject = "Grüße aus Köln — ".repeat(6);
    const encoded = encodeHeaderValue(subject);
    const words = encoded.split("\r\n ");
    expect(words.every((w) => /^=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=$/.test(w) && w.length <= 75)).toBe(true);
    expect(words.map((w) => Buffer.from(w.slice(10, -2), "base64").toString("utf8")).join("")).toBe(subject);
    expect(encodeHeaderValue("plain")).toBe("plain");
  });

  it("keeps every header line within RFC 5322's limits: a hundred recipients, a long subject, a non-ASCII one", () => {
    const to = Array.from({ length: 100 }, (_, i) => `recipient-number-${i}@example.com`);
    const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(" ");
    for (const subject of [long, `Grüße ${long}`]) {
      const message = buildMessage({ to, bcc: to, subject, text: "x", inReplyTo: "<abc@example.com>" }, date);
      const head = message.slice(0, message.indexOf("\r\n\r\n")).split("\r\n");
      expect(Math.max(...head.map((l) => l.length))).toBeLessThanOrEqual(78);
      // Unfolded, the headers say what was given.
      const unfolded = head.join("\r\n").replace(/\r\n /g, " ");
      expect(unfolded).toContain(`To: ${to.join(", ")}`);
      expect(unfolded).toContain(`Bcc: ${to.join(", ")}`);
      expect(unfolded).toContain("In-Reply-To: <abc@example.com>");
      if (subject === long) expect(unfolded).toContain(`Subject: ${long}`);
      else for (const l of head.filter((l) => l.includes("=?UTF-8?B?"))) expect(l.length).toBeLessThanOrEqual(76);
    }
  });

  it("makes text and HTML a multipart/alternative with one boundary, and wraps base64 at 76", () => {
    const message = buildMessage({ to: ["a@example.com"], subject: "S", text: "x".repeat(300), html: "<p>x</p>" }, date);
    const boundary = /boundary="([^"]+)"/.exec(message)?.[1] as string;
    expect(boundary).toBeDefined();
    expect(message.split(`--${boundary}\r\n`)).toHaveLength(3);
    expect(message).toContain(`--${boundary}--`);
    expect(message).toContain('Content-Type: text/html; charset="UTF-8"');
    expect(Math.max(...message.split("\r\n").map((l) => l.length))).toBeLessThanOrEqual(998);
    for (const l of message.split("\r\n").filter((l) => /^[A-Za-z0-9+/=]{20,}$/.test(l))) expect(l.length).toBeLessThanOrEqual(76);
  });
});
