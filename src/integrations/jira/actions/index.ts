/** Jira's typed actions. */
import { createIssue } from "./createIssue.js";
import { getIssue } from "./getIssue.js";
import { searchIssues } from "./searchIssues.js";

export const jiraActions = { createIssue, searchIssues, getIssue } as const;
