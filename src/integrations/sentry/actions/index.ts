/** Sentry's typed actions. */
import { listIssues } from "./listIssues.js";
import { listProjects } from "./listProjects.js";

export const sentryActions = { listProjects, listIssues } as const;
