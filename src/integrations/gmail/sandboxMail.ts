/**
 * The Gmail sandbox's messages: reading an RFC 5322 message as
 * users.messages.send receives it, the Message resource in each `format`
 * users.messages.get answers, and the `q` search of users.messages.list.
 * The routes live in `sandbox.ts`; what is kept of a message (its bytes,
 * labels, thread and time) lives in the sandbox's persisted state.
 *
 * Wire facts (Gmail API reference and discovery doc gmail-v1.json):
 *   - Message: `{id, threadId, labelIds, snippet, payload, sizeEstimate,
 *     historyId, internalDate}`; `internalDate` is epoch milliseconds as a
 *     string, `historyId` a uint64 as a string.
 *   - MessagePart: `{partId, mimeType, filename, headers:[{name,value}],
 *     body:{size, data?}, parts?}`; `data` is base64url of the decoded
 *     content; the root's partId is "", its children "0", "1", theirs "0.0".
 *   - format=minimal leaves out payload; metadata keeps payload's mimeType
 *     and headers (only those named by `metadataHeaders` when given); raw
 *     answers `raw`, base64url of the whole message, instead of payload.
 */
import { randomBytes } from "node:crypto";

/** What the sandbox keeps of a message. */
export type StoredMessage = {
  id: string;
  threadId: string;
  labelIds: string[];
  /** Epoch milliseconds, when Gmail received or sent it. */
  internalDate: number;
  historyId: string;
  /** The message as Gmail stores it, base64url (the `raw` format's value). */
  raw: string;
};

export type Header = { name: string; value: string };
/** A MIME part as parsed: headers and the still-encoded body. */
type Part = { headers: Header[]; body: Buffer };

const CRLF_SPLIT = /\r?\n/;

/** Splits a message (or a part) at its first empty line; header lines unfolded (RFC 5322 §2.2.3). */
function splitPart(bytes: Buffer): Part {
  const text = bytes.toString("latin1");
  const match = /\r?\n\r?\n/.exec(text);
  const head = match ? text.slice(0, match.index) : text;
  const bodyStart = match ? match.index + match[0].length : text.length;
  const headers: Header[] = [];
  for (const line of head.split(CRLF_SPLIT)) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1] as Header;
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    headers.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  // Header values were read as latin1 to keep the bytes; UTF-8 in them (RFC 6532) is decoded here.
  for (const h of headers) h.value = Buffer.from(h.value, "latin1").toString("utf8");
  // latin1 maps each byte to one character, so the offset in the text is the offset in the bytes.
  return { headers, body: bytes.subarray(bodyStart) };
}

export const headerOf = (headers: readonly Header[], name: string): string | undefined => headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;

/** RFC 2047 encoded words (=?UTF-8?B?...?= and =?...?Q?...?=) decoded, for matching and snippets. */
export function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _charset: string, encoding: string, text: string) => {
    if (encoding.toUpperCase() === "B") return Buffer.from(text, "base64").toString("utf8");
    return Buffer.from(text.replace(/_/g, " ").replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), "latin1").toString("utf8");
  });
}

/** The addresses of an address-list header (RFC 5322 §3.4): display names and groups allowed; undefined when one is not an address. */
export function addressesOf(value: string): string[] | undefined {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  let angle = 0;
  const push = (): boolean => {
    const item = current.trim();
    current = "";
    if (item === "") return true;
    const bracketed = /<([^<>]*)>\s*$/.exec(item);
    const address = (bracketed ? (bracketed[1] as string) : item.replace(/^[^:]*:/, "").replace(/;$/, "")).trim();
    if (!/^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/.test(address)) return false;
    out.push(address.toLowerCase());
    return true;
  };
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === "<") angle += 1;
    if (!quoted && ch === ">") angle = Math.max(0, angle - 1);
    if (!quoted && angle === 0 && ch === ",") {
      if (!push()) return undefined;
      continue;
    }
    current += ch;
  }
  if (!push()) return undefined;
  return out;
}

/** A part's body after its Content-Transfer-Encoding. */
function decodedBody(part: Part): Buffer {
  const encoding = (headerOf(part.headers, "content-transfer-encoding") ?? "7bit").toLowerCase();
  if (encoding === "base64") return Buffer.from(part.body.toString("latin1").replace(/\s+/g, ""), "base64");
  if (encoding === "quoted-printable") {
    const text = part.body.toString("latin1").replace(/=\r?\n/g, "");
    return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), "latin1");
  }
  return part.body;
}

const mimeTypeOf = (part: Part): string => (headerOf(part.headers, "content-type") ?? "text/plain").split(";")[0]?.trim().toLowerCase() || "text/plain";
const paramOf = (value: string | undefined, name: string): string | undefined => {
  const match = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, "i").exec(value ?? "");
  return match ? (match[1] ?? match[2]) : undefined;
};

/** A multipart body's parts, between its boundaries (RFC 2046 §5.1.1). */
function childrenOf(part: Part): Part[] {
  const boundary = paramOf(headerOf(part.headers, "content-type"), "boundary");
  if (!boundary) return [];
  const text = part.body.toString("latin1");
  const delimiter = `--${boundary}`;
  const pieces = text.split(new RegExp(`\\r?\\n?${delimiter.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  // Before the first delimiter is the preamble; after the closing one ("--") the epilogue.
  return pieces
    .slice(1)
    .filter((piece) => !piece.startsWith("--"))
    .map((piece) => splitPart(Buffer.from(piece.replace(/^[ \t]*\r?\n/, ""), "latin1")));
}

/** The parts of a multipart/related upload (googleapis' `uploadType=multipart`: the JSON metadata, then the message). */
export function relatedParts(contentType: string, body: Buffer): { contentType: string; body: Buffer }[] {
  return childrenOf({ headers: [{ name: "Content-Type", value: contentType }], body }).map((part) => ({ contentType: mimeTypeOf(part), body: decodedBody(part) }));
}

/** The message's first text/plain content (else text/html with the tags out), for snippets and `q`. */
function textOf(part: Part): string {
  const type = mimeTypeOf(part);
  if (type.startsWith("multipart/")) {
    const children = childrenOf(part);
    const plain = children.map(textOf).find((t) => t !== "");
    return plain ?? "";
  }
  if (type === "text/plain") return decodedBody(part).toString("utf8");
  if (type === "text/html") return decodedBody(part).toString("utf8").replace(/<[^>]*>/g, " ");
  return "";
}

/** A message as its bytes: the headers and text the routes read. */
export type ParsedMessage = { headers: Header[]; text: string; root: Part };

export function parseMessage(bytes: Buffer): ParsedMessage {
  const root = splitPart(bytes);
  return { headers: root.headers, text: textOf(root), root };
}

/** What users.messages.send refuses, as Gmail words it (400 INVALID_ARGUMENT, reason invalidArgument). */
export function sendRefusal(parsed: ParsedMessage): string | undefined {
  let recipients = 0;
  for (const name of ["To", "Cc", "Bcc"]) {
    const value = headerOf(parsed.headers, name);
    if (value === undefined || value.trim() === "") continue;
    const addresses = addressesOf(value);
    if (!addresses) return `Invalid ${name} header`;
    recipients += addresses.length;
  }
  if (recipients === 0) return "Recipient address required";
  return undefined;
}

/**
 * The message as Gmail stores a sent one: From is the account's own
 * address (Gmail puts it there when a message names none, and replaces an
 * address that is not one of the account's), and a Date and Message-ID are
 * added when missing.
 */
export function asSent(bytes: Buffer, account: string, now: Date): Buffer {
  const parsed = splitPart(bytes);
  const text = bytes.toString("latin1");
  const match = /\r?\n\r?\n/.exec(text);
  const body = match ? text.slice(match.index + match[0].length) : "";
  const headers = parsed.headers.filter((h) => h.name.toLowerCase() !== "from");
  const from = headerOf(parsed.headers, "from");
  const name = from ? /^\s*"?([^"<]*?)"?\s*</.exec(from)?.[1]?.trim() : undefined;
  const fromAddresses = from ? addressesOf(from) : undefined;
  const own = fromAddresses?.length === 1 && fromAddresses[0] === account;
  headers.unshift({ name: "From", value: own && from ? from : name ? `${name} <${account}>` : account });
  if (!headerOf(headers, "date")) headers.push({ name: "Date", value: now.toUTCString().replace("GMT", "+0000") });
  if (!headerOf(headers, "message-id")) headers.push({ name: "Message-ID", value: `<${randomBytes(12).toString("hex")}@sandbox.autoflow.invalid>` });
  const head = headers.map((h) => `${h.name}: ${h.value}`).join("\r\n");
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, "utf8"), Buffer.from(body, "latin1")]);
}

/** Gmail's snippet: the start of the text, whitespace collapsed, HTML-escaped. */
function snippetOf(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim().slice(0, 200);
  return flat.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

type MessagePart = { partId: string; mimeType: string; filename: string; headers: Header[]; body: { size: number; data?: string }; parts?: MessagePart[] };

function partResource(part: Part, partId: string): MessagePart {
  const mimeType = mimeTypeOf(part);
  const disposition = headerOf(part.headers, "content-disposition");
  const filename = paramOf(disposition, "filename") ?? paramOf(headerOf(part.headers, "content-type"), "name") ?? "";
  if (mimeType.startsWith("multipart/")) {
    const children = childrenOf(part).map((child, i) => partResource(child, partId === "" ? String(i) : `${partId}.${i}`));
    return { partId, mimeType, filename, headers: part.headers, body: { size: 0 }, parts: children };
  }
  const decoded = decodedBody(part);
  // Gmail answers an attachment's content by attachmentId; the sandbox has no attachments endpoint and inlines it.
  return { partId, mimeType, filename, headers: part.headers, body: { size: decoded.length, ...(decoded.length > 0 ? { data: decoded.toString("base64url") } : {}) } };
}

export const MESSAGE_FORMATS = ["minimal", "full", "raw", "metadata"] as const;
export type MessageFormat = (typeof MESSAGE_FORMATS)[number];

/** The Message resource of users.messages.get in `format`. */
export function messageResource(message: StoredMessage, format: MessageFormat, metadataHeaders: readonly string[] = []): Record<string, unknown> {
  const bytes = Buffer.from(message.raw, "base64url");
  const parsed = parseMessage(bytes);
  const common = {
    id: message.id,
    threadId: message.threadId,
    labelIds: message.labelIds,
    snippet: snippetOf(parsed.text),
  };
  const tail = { sizeEstimate: bytes.length, historyId: message.historyId, internalDate: String(message.internalDate) };
  if (format === "minimal") return { ...common, ...tail };
  if (format === "raw") return { ...common, ...tail, raw: message.raw };
  if (format === "metadata") {
    const wanted = metadataHeaders.map((h) => h.toLowerCase());
    const headers = wanted.length === 0 ? parsed.headers : parsed.headers.filter((h) => wanted.includes(h.name.toLowerCase()));
    return { ...common, payload: { mimeType: mimeTypeOf(parsed.root), headers }, ...tail };
  }
  return { ...common, payload: partResource(parsed.root, ""), ...tail };
}

/**
 * Gmail's search (`q`), the operators the sandbox knows: in:, label:, is:,
 * from:, to:, cc:, subject:, and bare words, all ANDed; a leading `-`
 * negates a term. `labelName` turns a user label's id into its name.
 */
export function matchesQuery(message: StoredMessage, q: string, labelName: (id: string) => string | undefined): boolean {
  const terms = q.match(/-?(?:[a-z]+:)?(?:"[^"]*"|\S+)/gi) ?? [];
  if (terms.length === 0) return true;
  const parsed = parseMessage(Buffer.from(message.raw, "base64url"));
  const header = (name: string): string => decodeWords(headerOf(parsed.headers, name) ?? "").toLowerCase();
  const labels = message.labelIds.flatMap((id) => [id.toLowerCase(), (labelName(id) ?? id).toLowerCase().replace(/\s+/g, "-")]);
  return terms.every((raw) => {
    const negated = raw.startsWith("-");
    const term = negated ? raw.slice(1) : raw;
    const colon = term.indexOf(":");
    const operator = colon > 0 ? term.slice(0, colon).toLowerCase() : "";
    const value = (colon > 0 ? term.slice(colon + 1) : term).replace(/^"|"$/g, "").toLowerCase();
    let hit: boolean;
    switch (operator) {
      case "in":
      case "label":
        hit = labels.includes(value.replace(/\s+/g, "-"));
        break;
      case "is":
        hit = value === "read" ? !message.labelIds.includes("UNREAD") : labels.includes(value);
        break;
      case "from":
      case "to":
      case "cc":
      case "subject":
        hit = header(operator).includes(value);
        break;
      default:
        hit = `${header("subject")} ${header("from")} ${header("to")} ${parsed.text.toLowerCase()}`.includes(term.replace(/^"|"$/g, "").toLowerCase());
    }
    return negated ? !hit : hit;
  });
}
