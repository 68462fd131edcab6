/** Gmail `users.messages.send`: a message built for the user (RFC 5322, base64url), from the connected address. */
import { z } from "zod";
import { defineAction } from "../../shared/action.js";
import { rawMessage } from "./rfc5322.js";

/** An address on its own (no display name): nothing a header could be split with. */
const address = z.email({ error: "must be an email address" });
/** One header line's worth, without the line breaks that would start another header. */
const line = (max: number) => z.string().max(max).regex(/^[^\r\n]*$/, "may not hold a line break");

const answer = z.looseObject({ id: z.string(), threadId: z.string(), labelIds: z.array(z.string()).optional() });

export const sendMessage = defineAction({
  description: "Sends an email from the connected Gmail address: plain text, or text with an HTML alternative; optionally in a thread.",
  scopes: ["https://mail.google.com/", "https://www.googleapis.com/auth/gmail.send", "https://www.googleapis.com/auth/gmail.compose", "https://www.googleapis.com/auth/gmail.modify"],
  input: z.strictObject({
    to: z.array(address).min(1).max(100),
    cc: z.array(address).max(100).optional(),
    bcc: z.array(address).max(100).optional(),
    /** Folded at spaces as sent; a single word longer than a line cannot be, hence the bound. */
    subject: line(900),
    text: z.string().max(5_000_000),
    html: z.string().max(5_000_000).optional(),
    /** Reply in this thread (its id from a listed message). */
    threadId: z.string().regex(/^[0-9a-f]{1,32}$/i, "a Gmail thread id").optional(),
    /** The Message-ID header of the message replied to, for the reply's In-Reply-To and References. */
    inReplyTo: z.string().max(900).regex(/^<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>$/, "a Message-ID like <id@host>").optional(),
  }),
  output: z.object({ id: z.string(), threadId: z.string(), labelIds: z.array(z.string()) }),
  async run(ctx, input) {
    const from = typeof ctx.connection.metadata.emailAddress === "string" ? ctx.connection.metadata.emailAddress : undefined;
    const raw = rawMessage({
      ...(from ? { from } : {}),
      to: input.to,
      ...(input.cc ? { cc: input.cc } : {}),
      ...(input.bcc ? { bcc: input.bcc } : {}),
      subject: input.subject,
      text: input.text,
      ...(input.html !== undefined ? { html: input.html } : {}),
      ...(input.inReplyTo ? { inReplyTo: input.inReplyTo } : {}),
    });
    const sent = await ctx.read({ method: "POST", path: "/gmail/v1/users/me/messages/send", json: { raw, ...(input.threadId ? { threadId: input.threadId } : {}) } }, answer);
    return { id: sent.id, threadId: sent.threadId, labelIds: sent.labelIds ?? [] };
  },
});
