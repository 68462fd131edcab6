/** Gmail's typed actions. */
import { listMessages } from "./listMessages.js";
import { sendMessage } from "./sendMessage.js";

export const gmailActions = { sendMessage, listMessages } as const;
