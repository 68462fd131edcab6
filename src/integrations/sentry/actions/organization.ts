/** The organization an action works in: named, or the one the connection was made for. */
import { z } from "zod";
import type { ActionContext } from "../../shared/action.js";
import { invalidInput } from "../../shared/errors.js";

export const organizationInput = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,99}$/, "an organization slug");

export function requireOrganization(ctx: ActionContext, given: string | undefined): string {
  const known = ctx.connection.metadata.organizationSlug;
  const slug = given ?? (typeof known === "string" ? known : undefined);
  if (!slug) throw invalidInput("input.organization", "this connection reaches several organizations: name one (its slug)", ctx.provider);
  return slug;
}
