/** What Graph ids of teams and channels look like: a team is a group's GUID; a channel id is `19:...@thread.tacv2` (or `.skype`). */
import { z } from "zod";

export const teamId = z.uuid({ error: "must be a team id (a GUID, from listJoinedTeams)" });
export const channelId = z.string().regex(/^19:[\w.-]+@thread\.(tacv2|skype)$/, "must be a channel id like 19:...@thread.tacv2 (from listChannels)");
