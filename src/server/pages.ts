/**
 * The pages a browser sees at the OAuth callback. Plain HTML, no script, no
 * redirect anywhere: the request cannot choose where the user goes next.
 */
import { escapeHtml } from "../integrations/shared/html.js";

/** Headers of every callback page (RFC 9700 §4.2.4: no Referer leaks the code). */
export const CALLBACK_HEADERS: Readonly<Record<string, string>> = {
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-type": "text/html; charset=utf-8",
};

export function callbackPage(input: { title: string; lines: string[]; ok: boolean }): string {
  const color = input.ok ? "#1a7f37" : "#b42318";
  return [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(input.title)}</title>`,
    "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}",
    `h1{font-size:1.4rem;color:${color}}</style></head><body>`,
    `<h1>${escapeHtml(input.title)}</h1>`,
    ...input.lines.map((line) => `<p>${escapeHtml(line)}</p>`),
    "<p>You can close this window.</p>",
    "</body></html>",
  ].join("\n");
}
