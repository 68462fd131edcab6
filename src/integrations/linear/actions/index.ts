/** Linear's typed actions. */
import { createIssue } from "./createIssue.js";
import { listTeams } from "./listTeams.js";

export const linearActions = { createIssue, listTeams } as const;
