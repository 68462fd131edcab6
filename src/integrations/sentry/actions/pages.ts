/** Sentry's cursor paging: the `Link` header's `rel="next"` part, followed while it says `results="true"`. */
import type { z } from "zod";
import type { ActionContext } from "../../shared/action.js";
import { parseAnswer } from "../../shared/action.js";

/** The next page's cursor, when the `Link` header says there are results there. */
export function nextCursor(link: string | null): string | undefined {
  for (const part of (link ?? "").split(/,\s*(?=<)/)) {
    if (/rel="next"/.test(part) && /results="true"/.test(part)) return /cursor="([^"]+)"/.exec(part)?.[1];
  }
  return undefined;
}

/** Items of `path` page after page until `limit` or the last page; the cursor to continue from, if any. */
export async function pages<T>(
  ctx: ActionContext,
  action: string,
  path: string,
  query: Record<string, string>,
  schema: z.ZodType<T[]>,
  limit: number,
  cursor?: string,
): Promise<{ items: T[]; cursor?: string }> {
  const items: T[] = [];
  let next = cursor;
  do {
    const response = await ctx.call({ method: "GET", path, query: { ...query, per_page: String(Math.min(100, limit - items.length)), ...(next ? { cursor: next } : {}) } });
    items.push(...parseAnswer({ provider: ctx.provider, name: "Sentry" }, action, response.json, schema));
    next = nextCursor(response.headers.get("link"));
  } while (next && items.length < limit);
  return { items: items.slice(0, limit), ...(next ? { cursor: next } : {}) };
}
