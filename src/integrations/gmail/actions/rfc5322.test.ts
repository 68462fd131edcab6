import { describe, expect, it } from "vitest";
import { buildMessage, encodeHeaderValue, rawMessage } from "./rfc5322.js";

describe("the RFC 5322 message of a Gmail send", () => {
  const date = new Date(Date.UTC(2026, 11, 2, 10, 0, 0));

  it("writes CRLF headers, a base64 text body, and base64url as raw", () => {
    const text = buildMessage({ from: "me@example.com", to: ["a@example.com", "b@example.com"], subject: "Hello", text: "Hi there" }, date);
    expect(text.split("\r\n").slice(0, 7)).toEqual([
      "From: me@example.com",
      "To: a@example.com, b@example.com",
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
