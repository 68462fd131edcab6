/** Microsoft Teams' typed actions. */
import { listChannels } from "./listChannels.js";
import { listJoinedTeams } from "./listJoinedTeams.js";
import { sendChannelMessage } from "./sendChannelMessage.js";

export const teamsActions = { listJoinedTeams, listChannels, sendChannelMessage } as const;
