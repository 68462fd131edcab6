/** Graph's paging: `value` items, and `@odata.nextLink` (an absolute URL on the Graph origin) while there are more. */
import { z } from "zod";
import type { ActionContext } from "../../shared/action.js";

export async function graphPages<T>(ctx: ActionContext, path: string, item: z.ZodType<T>, limit: number): Promise<T[]> {
  const page = z.looseObject({ value: z.array(item), "@odata.nextLink": z.string().optional() });
  const items: T[] = [];
  let next: { path: string } | { url: string } = { path };
  for (;;) {
    const body: { value: T[]; "@odata.nextLink"?: string | undefined } = await ctx.read({ method: "GET", ...next }, page);
    items.push(...body.value);
    const link: string | undefined = body["@odata.nextLink"];
    if (!link || items.length >= limit) break;
    next = { url: link };
  }
  return items.slice(0, limit);
}
