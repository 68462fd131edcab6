import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { adfToText, descriptionToSend, textToAdf, type AdfNode } from "./adf.js";

const rich: AdfNode = {
  type: "doc",
  version: 1,
  content: [
    { type: "heading", attrs: { level: 2 }, content: [{ type: "text", text: "Steps" }] },
    {
      type: "paragraph",
      content: [
        { type: "text", text: "Ask " },
        { type: "mention", attrs: { id: "5b10ac8d82e05b22cc7d4ef5", text: "@Ada" } },
        { type: "text", text: " about it ", marks: [{ type: "strong" }] },
        { type: "emoji", attrs: { shortName: ":smile:", text: "😄" } },
        { type: "hardBreak" },
        { type: "inlineCard", attrs: { url: "https://example.invalid/x" } },
      ],
    },
    { type: "orderedList", attrs: { order: 3 }, content: [{ type: "listItem", content: [{ type: "paragraph", content: [{ type: "text", text: "one" }] }] }, { type: "listItem", content: [{ type: "paragraph", content: [{ type: "text", text: "two" }] }] }] },
    { type: "bulletList", content: [{ type: "listItem", content: [{ type: "paragraph", content: [{ type: "text", text: "dot" }] }] }] },
    { type: "codeBlock", attrs: { language: "js" }, content: [{ type: "text", text: "let x = 1;\nx++;" }] },
    { type: "mediaSingle", content: [{ type: "media", attrs: { id: "abc", type: "file", collection: "c" } }] },
    { type: "table", content: [{ type: "tableRow", content: [{ type: "tableHeader", content: [{ type: "paragraph", content: [{ type: "text", text: "a" }] }] }, { type: "tableCell", content: [{ type: "paragraph", content: [{ type: "text", text: "b" }] }] }] }] },
    { type: "blockquote", content: [{ type: "paragraph", content: [{ type: "text", text: "quoted" }] }] },
    { type: "rule" },
    { type: "someFutureBlock", content: [{ type: "paragraph", content: [{ type: "text", text: "still read" }] }] },
  ],
};

describe("ADF and plain text", () => {
  it("reads what a reader sees in a rich document", () => {
    expect(adfToText(rich)).toBe(
      ["Steps", "Ask @Ada about it 😄\nhttps://example.invalid/x", "3. one\n4. two", "- dot", "let x = 1;\nx++;", "a | b", "> quoted", "---", "still read"].join("\n\n"),
    );
    expect(adfToText(null)).toBe("");
    expect(adfToText({ type: "doc", version: 1, content: [] })).toBe("");
  });

  it("writes paragraphs at blank lines and hard breaks within one", () => {
    expect(textToAdf("first line\nsecond\n\nnext paragraph")).toEqual({
      type: "doc",
      version: 1,
      content: [
        { type: "paragraph", content: [{ type: "text", text: "first line" }, { type: "hardBreak" }, { type: "text", text: "second" }] },
        { type: "paragraph", content: [{ type: "text", text: "next paragraph" }] },
      ],
    });
    expect(textToAdf("")).toEqual({ type: "doc", version: 1, content: [] });
  });

  it("round-trips any text through ADF (line endings normalized, runs of blank lines one)", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom("a", "b", " ", "\n", "é", "😀", "\r\n") }), (text) => {
        const expected = text.replace(/\r\n?/g, "\n").replace(/\n{3,}/g, "\n\n").trim();
        expect(adfToText(textToAdf(text))).toBe(expected.replace(/\n\n+/g, "\n\n"));
      }),
    );
  });

  it("sends an unchanged document back untouched, and a changed one from its text", () => {
    expect(descriptionToSend(adfToText(rich), rich)).toBe(rich);
    const changed = descriptionToSend(`${adfToText(rich)}\n\nadded`, rich);
    expect(changed).not.toBe(rich);
    expect(adfToText(changed)).toBe(`${adfToText(rich)}\n\nadded`);
    expect(descriptionToSend("new", null)).toEqual(textToAdf("new"));
  });
});
