/**
 * Atlassian Document Format (Jira Cloud's rich text in descriptions and
 * comments) to plain text and back.
 *
 * Text to ADF is lossless for text: paragraphs at blank lines, hard breaks
 * at single newlines. ADF to text keeps what a reader sees (mentions, emoji,
 * links, list markers, table cells) and drops what has no text (media).
 * That direction loses marks and layout, so the mirror keeps the original
 * document beside its text, and a push sends a document back untouched when
 * its text did not change (see `descriptionToSend`).
 */
import { z } from "zod";

/** An ADF node, read loosely: unknown node types are walked for their content, never refused. */
export type AdfNode = { type: string; text?: string; attrs?: Record<string, unknown>; content?: AdfNode[]; marks?: unknown[]; version?: number };

export const adfNodeSchema: z.ZodType<AdfNode> = z.lazy(() =>
  z.looseObject({
    type: z.string(),
    text: z.string().optional(),
    attrs: z.record(z.string(), z.unknown()).optional(),
    content: z.array(adfNodeSchema).optional(),
    marks: z.array(z.unknown()).optional(),
    version: z.number().optional(),
  }),
);

export type AdfDocument = AdfNode & { type: "doc"; version: 1; content: AdfNode[] };

/** Nodes that stand as blocks: separated from their neighbours by a blank line. */
const BLOCKS = new Set(["paragraph", "heading", "blockquote", "codeBlock", "bulletList", "orderedList", "taskList", "decisionList", "panel", "rule", "table", "mediaSingle", "mediaGroup", "expand", "nestedExpand", "blockCard", "embedCard", "layoutSection"]);

/** Plain text to an ADF document: a paragraph per blank-line-separated block, hard breaks within one. */
export function textToAdf(text: string): AdfDocument {
  const normalized = text.replace(/\r\n?/g, "\n");
  const paragraphs = normalized.split(/\n{2,}/).filter((p) => p.length > 0);
  return {
    type: "doc",
    version: 1,
    content: paragraphs.map((paragraph) => {
      const content: AdfNode[] = [];
      paragraph.split("\n").forEach((line, index) => {
        if (index > 0) content.push({ type: "hardBreak" });
        if (line.length > 0) content.push({ type: "text", text: line });
      });
      return { type: "paragraph", content };
    }),
  };
}

/** The text a reader sees in an ADF document (or node); "" for none. */
export function adfToText(node: AdfNode | null | undefined): string {
  if (!node) return "";
  return blockText(node).replace(/\n{3,}/g, "\n\n").trim();
}

function inlineText(node: AdfNode): string {
  const attrs = node.attrs ?? {};
  const attr = (name: string): string => (typeof attrs[name] === "string" ? (attrs[name] as string) : "");
  switch (node.type) {
    case "text":
      return node.text ?? "";
    case "hardBreak":
      return "\n";
    case "mention":
      return attr("text") || (attr("id") ? `@${attr("id")}` : "");
    case "emoji":
      return attr("text") || attr("shortName");
    case "inlineCard":
      return attr("url");
    case "status":
      return attr("text");
    case "date": {
      const stamp = Number(attrs.timestamp);
      return Number.isFinite(stamp) ? new Date(stamp).toISOString().slice(0, 10) : "";
    }
    case "media":
    case "mediaInline":
      return "";
    default:
      return (node.content ?? []).map((child) => (BLOCKS.has(child.type) ? blockText(child) : inlineText(child))).join("");
  }
}

function blockText(node: AdfNode): string {
  const children = node.content ?? [];
  switch (node.type) {
    case "doc":
    case "panel":
    case "expand":
    case "nestedExpand":
    case "layoutSection":
    case "layoutColumn":
    case "tableCell":
    case "tableHeader":
      return children.map(blockText).filter((t) => t.length > 0).join("\n\n");
    case "paragraph":
    case "heading":
      return inlineText(node);
    case "codeBlock":
      return children.map(inlineText).join("");
    case "blockquote":
      return children
        .map(blockText)
        .join("\n\n")
        .split("\n")
        .map((line) => `> ${line}`)
        .join("\n");
    case "bulletList":
    case "orderedList":
    case "taskList":
    case "decisionList": {
      const start = typeof node.attrs?.order === "number" ? node.attrs.order : 1;
      return children
        .map((item, index) => {
          const marker = node.type === "orderedList" ? `${start + index}. ` : node.type === "taskList" ? (item.attrs?.state === "DONE" ? "[x] " : "[ ] ") : "- ";
          const body = (item.content ?? []).map((c) => (BLOCKS.has(c.type) ? blockText(c) : inlineText(c))).join("\n");
          return marker + body.split("\n").join("\n  ");
        })
        .join("\n");
    }
    case "rule":
      return "---";
    case "table":
      return children.map((row) => (row.content ?? []).map((cell) => blockText(cell).replace(/\n+/g, " ")).join(" | ")).join("\n");
    case "blockCard":
    case "embedCard":
      return typeof node.attrs?.url === "string" ? node.attrs.url : "";
    case "mediaSingle":
    case "mediaGroup":
      return "";
    default:
      return BLOCKS.has(node.type) || children.some((c) => BLOCKS.has(c.type)) ? children.map(blockText).filter(Boolean).join("\n\n") : inlineText(node);
  }
}

/**
 * What a push sends as an ADF field: the original document when the text
 * asked for is the text it already shows (no lossy round trip of marks,
 * mentions, media or tables), a document made from the text otherwise.
 */
export function descriptionToSend(text: string, original: AdfNode | null | undefined): AdfNode {
  if (original && adfToText(original) === adfToText(textToAdf(text))) return original;
  return textToAdf(text);
}
