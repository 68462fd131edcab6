/** Slack's typed actions. */
import { listConversations } from "./listConversations.js";
import { postMessage } from "./postMessage.js";

export const slackActions = { postMessage, listConversations } as const;
