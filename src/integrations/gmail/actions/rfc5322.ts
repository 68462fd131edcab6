/**
 * The message a Gmail send carries: RFC 5322 headers (non-ASCII words as
 * RFC 2047 encoded-words), a MIME body (RFC 2045/2046: text, or text and
 * HTML as multipart/alternative), each part base64 in 76-character lines,
 * CRLF throughout; the whole base64url-encoded as `raw` (users.messages.send).
 */
import { randomBytes } from "node:crypto";

export type OutgoingMessage = { from?: string; to: string[]; cc?: string[]; bcc?: string[]; subject: string; text: string; html?: string; inReplyTo?: string };

const CRLF = "\r\n";

/** The longest line a header is folded to where it can be (RFC 5322 §2.1.1 SHOULD). */
const FOLD_AT = 78;

/** `Name: value`, folded at spaces into lines of at most 78 characters where the value allows. */
function foldText(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of value.split(" ")) {
    if (line.length + 1 + word.length > FOLD_AT && line.trim() !== `${name}:`) {
      lines.push(line);
      line = "";
    }
    line += ` ${word}`;
  }
  return [...lines, line].join(CRLF);
}

/** A header of addresses, one to a line after the first: a hundred recipients stay within the line limits. */
function addressHeader(name: string, addresses: readonly string[]): string {
  return `${name}: ${addresses.join(`,${CRLF} `)}`;
}

/**
 * The Subject header: plain ASCII folded at spaces; otherwise RFC 2047
 * encoded-words, each on a line of its own (at most 76 characters with the
 * folding space), so no line holding one passes RFC 2047's limit.
 */
function subjectHeader(subject: string): string {
  if (/^[\x20-\x7e]*$/.test(subject)) return foldText("Subject", subject);
  return `Subject:${CRLF} ${encodeHeaderValue(subject)}`;
}

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
    addressHeader("To", message.to),
    ...(message.cc?.length ? [addressHeader("Cc", message.cc)] : []),
    // Gmail takes the Bcc recipients from this header and leaves it out of what it delivers.
    ...(message.bcc?.length ? [addressHeader("Bcc", message.bcc)] : []),
    subjectHeader(message.subject),
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
