/**
 * The message a Gmail send carries: RFC 5322 headers (non-ASCII words as
 * RFC 2047 encoded-words), a MIME body (RFC 2045/2046: text, or text and
 * HTML as multipart/alternative), each part base64 in 76-character lines,
 * CRLF throughout; the whole base64url-encoded as `raw` (users.messages.send).
 */
import { randomBytes } from "node:crypto";

export type OutgoingMessage = { from?: string; to: string[]; cc?: string[]; bcc?: string[]; subject: string; text: string; html?: string; inReplyTo?: string };

const CRLF = "\r\n";

/** A header value as RFC 2047 encoded-words when it is not plain ASCII. */
export function encodeHeaderValue(value: string): string {
  if (/^[\x20-\x7e]*$/.test(value)) return value;
  // Encoded-words of at most 75 characters: UTF-8 split on character boundaries, 45 bytes each (60 base64 characters).
  const words: string[] = [];
  let chunk = "";
  for (const char of value) {
    if (Buffer.byteLength(chunk + char) > 45) {
      words.push(chunk);
      chunk = "";
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, "utf8").toString("base64")}?=`).join(`${CRLF} `);
}

function base64Lines(text: string): string {
  return (Buffer.from(text, "utf8").toString("base64").match(/.{1,76}/g) ?? []).join(CRLF);
}

function part(type: "plain" | "html", text: string): string {
  return [`Content-Type: text/${type}; charset="UTF-8"`, "Content-Transfer-Encoding: base64", "", base64Lines(text)].join(CRLF);
}

/** The RFC 5322 message, as text. */
export function buildMessage(message: OutgoingMessage, date = new Date()): string {
  const headers = [
    ...(message.from ? [`From: ${message.from}`] : []),
    `To: ${message.to.join(", ")}`,
    ...(message.cc?.length ? [`Cc: ${message.cc.join(", ")}`] : []),
    ...(message.bcc?.length ? [`Bcc: ${message.bcc.join(", ")}`] : []),
    `Subject: ${encodeHeaderValue(message.subject)}`,
    `Date: ${date.toUTCString().replace("GMT", "+0000")}`,
    ...(message.inReplyTo ? [`In-Reply-To: ${message.inReplyTo}`, `References: ${message.inReplyTo}`] : []),
    "MIME-Version: 1.0",
  ];
  if (message.html === undefined) return [...headers, part("plain", message.text)].join(CRLF);
  const boundary = `=_autoflow_${randomBytes(12).toString("hex")}`;
  return [
    ...headers,
    `Content-Type: multipart/alternative; boundary="${boundary}"`,
    "",
    `--${boundary}`,
    part("plain", message.text),
    `--${boundary}`,
    part("html", message.html),
    `--${boundary}--`,
    "",
  ].join(CRLF);
}

/** `raw` of users.messages.send: the message, base64url. */
export function rawMessage(message: OutgoingMessage, date?: Date): string {
  return Buffer.from(buildMessage(message, date), "utf8").toString("base64url");
}
