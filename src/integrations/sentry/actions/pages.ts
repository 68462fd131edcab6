/** Sentry's cursor paging: the `Link` header's `rel="next"` part, followed while it says `results="true"`. */
import type { z } from "zod";
import type { ActionContext } from "../../shared/action.js";
import { parseAnswer } from "../../shared/action.js";
import { ErrorCodes, IntegrationError } from "../../shared/errors.js";

/** The next page's cursor, when the `Link` header says there are results there. */
export function nextCursor(link: string | null): string | undefined {
  for (const part of (link ?? "").split(/,\s*(?=<)/)) {
    if (/rel="next"/.test(part) && /results="true"/.test(part)) return /cursor="([^"]+)"/.exec(part)?.[1];
  }
  return undefined;
}

/**
 * Items of `path` page after page until `limit` or the last page, and the
 * cursor to continue from. Each page asks for exactly what is still wanted,
 * so no item is dropped between a page and the cursor after it. The page
 * size is `per_page` for the generic lists (projects) and `limit` for the
 * issue streams, which read only that.
 */
export async function pages<T>(
  ctx: ActionContext,
  action: string,
  request: { path: string; query: Record<string, string>; pageSize: "per_page" | "limit" },
  schema: z.ZodType<T[]>,
  limit: number,
  cursor?: string,
): Promise<{ items: T[]; cursor?: string }> {
  const items: T[] = [];
  let next = cursor;
  do {
    const wanted = Math.min(100, limit - items.length);
    const response = await ctx.call({ method: "GET", path: request.path, query: { ...request.query, [request.pageSize]: String(wanted), ...(next ? { cursor: next } : {}) } });
    const page = parseAnswer({ provider: ctx.provider, name: "Sentry" }, action, response.json, schema);
    items.push(...page.slice(0, wanted));
    next = nextCursor(response.headers.get("link"));
    // A page longer than asked for (a size the endpoint does not take) would lose items behind the cursor.
    if (page.length > wanted) {
      throw new IntegrationError({ type: "upstream", code: ErrorCodes.UNPARSABLE_RESPONSE, provider: ctx.provider, message: `Sentry answered ${page.length} items for a page of ${wanted} (${action})` });
    }
  } while (next && items.length < limit);
  return { items, ...(next ? { cursor: next } : {}) };
}
