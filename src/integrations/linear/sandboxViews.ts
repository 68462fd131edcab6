/**
 * What the Linear sandbox answers for its workspace: every field of the
 * served types of sandboxSchema.ts, from the few records the sandbox keeps
 * (organization, two users, teams, issues). Values are those of a new
 * workspace on the free plan: features off, nothing linked, empty
 * connections; object fields are thunks, so only what a query selects is
 * built. Workflow states and project statuses are Linear's defaults for a new
 * team and workspace, with ids derived from their owner's id (stable across
 * restarts without being stored).
 */
import { createHash } from "node:crypto";
import { FieldError } from "./sandboxGraphql.js";

export type Organization = { id: string; name: string; urlKey: string; createdAt: string; userCount: number; logoUrl: null };
export type Person = { id: string; name: string; displayName: string; email: string; admin: boolean; app: boolean; createdAt: string; timezone: string | null };
export type Team = { id: string; key: string; name: string; description: string | null; private: boolean; createdAt: string; updatedAt: string; issueCount: number };
export type IssueRecord = {
  id: string;
  teamId: string;
  number: number;
  title: string;
  description: string | null;
  priority: number;
  createdAt: string;
  updatedAt: string;
  creatorId: string;
  /** Absent in issues stored before the sandbox modelled them: the team's default state, unassigned. */
  stateId?: string;
  assigneeId?: string | null;
  dueDate?: string | null;
  estimate?: number | null;
  sortOrder?: number;
};
export type Workspace = { organization: Organization; owner: Person; appUser: Person; members?: Person[]; teams: Team[]; issues: Map<string, IssueRecord> };
type Args = Record<string, unknown>;

/** Connections answer 50 nodes unless `first` says otherwise, and at most 250 (Linear's pagination.md). */
const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 250;
const PRIORITY_LABELS = ["No priority", "Urgent", "High", "Medium", "Low"];
/** A new team's workflow states (name, type, colour), in board order. */
const DEFAULT_STATES = [
  ["Backlog", "backlog", "#bec2c8"],
  ["Todo", "unstarted", "#e2e2e2"],
  ["In Progress", "started", "#f2c94c"],
  ["Done", "completed", "#5e6ad2"],
  ["Canceled", "canceled", "#95a2b3"],
  ["Duplicate", "canceled", "#95a2b3"],
] as const;
/** Where an issue created without `stateId` goes. [UNCERTAIN] Linear lets each team choose; Backlog is the sandbox's pick. */
const DEFAULT_STATE = "Backlog";
/** A new workspace's project statuses (name, type, colour). */
const DEFAULT_PROJECT_STATUSES = [
  ["Backlog", "backlog", "#bec2c8"],
  ["Planned", "planned", "#e2e2e2"],
  ["In Progress", "started", "#f2c94c"],
  ["Completed", "completed", "#5e6ad2"],
  ["Canceled", "canceled", "#95a2b3"],
] as const;

/** A UUID-shaped id derived from `seed` (version 4 and variant bits set, as Linear's ids have them). */
export function derivedId(seed: string): string {
  const hex = createHash("sha256").update(seed).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((parseInt(hex[16] as string, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
const hash = (seed: string, length: number): string => createHash("sha256").update(seed).digest("hex").slice(0, length);

/** Linear's "invalid input" error of a field (type and message as captured; [UNCERTAIN] the `code`). */
export const invalidInput = (message: string, userPresentableMessage: string): FieldError =>
  new FieldError(message, { type: "invalid input", code: "INVALID_INPUT", statusCode: 400, userError: true, userPresentableMessage });
export const entityNotFound = (entity: string): FieldError => invalidInput(`Entity not found: ${entity}`, `Could not find referenced ${entity}.`);

export type WorkflowStateRecord = { id: string; teamId: string; name: string; type: string; color: string; position: number; createdAt: string };
export const workflowStatesOf = (team: Team): WorkflowStateRecord[] =>
  DEFAULT_STATES.map(([name, type, color], position) => ({ id: derivedId(`${team.id}/state/${name}`), teamId: team.id, name, type, color, position, createdAt: team.createdAt }));
export const defaultStateOf = (team: Team): WorkflowStateRecord => workflowStatesOf(team).find((s) => s.name === DEFAULT_STATE) as WorkflowStateRecord;

/**
 * A connection over `items` (cursors are node ids, as Linear's are): `first`/`after` forwards,
 * `last`/`before` backwards. A filter is refused: the sandbox does not evaluate Linear's filters.
 */
export function connection<T extends { id: string }>(items: T[], view: (item: T) => unknown) {
  return (args: Args) => {
    if (args.filter !== undefined && args.filter !== null) throw invalidInput("Argument Validation Error", "The sandbox does not evaluate filters; page through the nodes instead.");
    for (const name of ["first", "last"]) {
      const n = args[name];
      if (n !== undefined && n !== null && !(typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= MAX_PAGE_SIZE)) {
        throw invalidInput("Argument Validation Error", `${name} must not be greater than ${MAX_PAGE_SIZE}.`);
      }
    }
    const ordered = args.orderBy === "updatedAt" ? [...items].sort((a, b) => String((a as { updatedAt?: string }).updatedAt).localeCompare(String((b as { updatedAt?: string }).updatedAt))) : items;
    let start = 0;
    let end = ordered.length;
    if (typeof args.after === "string") start = ordered.findIndex((i) => i.id === args.after) + 1;
    if (typeof args.before === "string") {
      const at = ordered.findIndex((i) => i.id === args.before);
      if (at >= 0) end = at;
    }
    if (typeof args.last === "number" && typeof args.first !== "number") start = Math.max(start, end - args.last);
    else end = Math.min(end, start + (typeof args.first === "number" ? args.first : DEFAULT_PAGE_SIZE));
    const page = ordered.slice(start, end);
    return {
      edges: page.map((item) => ({ cursor: item.id, node: () => view(item) })),
      nodes: page.map(view),
      pageInfo: { hasNextPage: end < ordered.length, hasPreviousPage: start > 0, startCursor: page[0]?.id ?? null, endCursor: page[page.length - 1]?.id ?? null },
    };
  };
}
const empty = connection([], () => null);

/** The views of `workspace` as `viewer` sees it (`isMe`). */
export function views(workspace: Workspace, viewer: Person) {
  const { organization, owner, appUser, teams, issues } = workspace;
  const people = [owner, appUser, ...(workspace.members ?? [])];
  const allIssues = (): IssueRecord[] => [...issues.values()];
  const stateOf = (issue: IssueRecord): WorkflowStateRecord => {
    const team = teams.find((t) => t.id === issue.teamId) as Team;
    return workflowStatesOf(team).find((s) => s.id === issue.stateId) ?? defaultStateOf(team);
  };
  const at = (seed: string): string => `https://linear.app/${organization.urlKey}/${seed}`;

  const user = (person: Person) => ({
    active: true,
    admin: person.admin,
    app: person.app,
    archivedAt: null,
    assignedIssues: connection(allIssues().filter((i) => i.assigneeId === person.id), issue),
    avatarBackgroundColor: `#${hash(person.id, 6)}`,
    avatarUrl: null,
    calendarHash: null,
    canAccessAnyPublicTeam: true,
    createdAt: person.createdAt,
    createdIssueCount: allIssues().filter((i) => i.creatorId === person.id).length,
    createdIssues: connection(allIssues().filter((i) => i.creatorId === person.id), issue),
    delegatedIssues: empty,
    description: null,
    disableReason: null,
    displayName: person.displayName,
    drafts: empty,
    email: person.email,
    feedFacets: empty,
    gitHubUserId: null,
    guest: false,
    hasGitHubCodeAccess: false,
    id: person.id,
    identityProvider: null,
    initials: person.name.split(/\s+/).map((w) => w.charAt(0).toUpperCase()).join("").slice(0, 2),
    inviteHash: hash(`${person.id}/invite`, 16),
    // An app user is assignable and mentionable only with the app:assignable / app:mentionable scopes.
    isAssignable: !person.app,
    isMe: person.id === viewer.id,
    isMentionable: !person.app,
    issueDrafts: empty,
    lastSeen: null,
    name: person.name,
    organization: () => organizationView(),
    owner: person.admin && !person.app,
    statusEmoji: null,
    statusLabel: null,
    statusUntilAt: null,
    supportsAgentSessions: person.app,
    teamMemberships: empty,
    teams: connection(teams, team),
    timezone: person.timezone,
    title: null,
    updatedAt: person.createdAt,
    url: at(`profiles/${person.displayName}`),
  });

  const projectStatuses = () =>
    DEFAULT_PROJECT_STATUSES.map(([name, type, color], position) => ({
      archivedAt: null,
      color,
      createdAt: organization.createdAt,
      description: null,
      id: derivedId(`${organization.id}/projectStatus/${name}`),
      indefinite: type === "backlog" || type === "planned",
      inheritedFrom: null,
      name,
      position,
      team: null,
      teamId: null,
      type,
      updatedAt: organization.createdAt,
    }));

  const organizationView = () => ({
    agentAutomationEnabled: false,
    aiAddonEnabled: false,
    aiDiscussionSummariesEnabled: false,
    aiProviderConfiguration: null,
    aiTelemetryEnabled: false,
    aiThreadSummariesEnabled: false,
    allowMembersToInvite: true,
    allowedAiProviders: [],
    allowedAuthServices: [],
    allowedFileUploadContentTypes: null,
    archivedAt: null,
    authSettings: {},
    codeIntelligenceEnabled: false,
    codeIntelligenceRepository: null,
    codingAgentEnabled: false,
    codingAgentSettings: {},
    createdAt: organization.createdAt,
    createdIssueCount: issues.size,
    customerCount: 0,
    customersConfiguration: {},
    customersEnabled: false,
    defaultFeedSummarySchedule: null,
    defaultHomeView: null,
    defaultHomeViewTargetId: null,
    deletionRequestedAt: null,
    facets: [],
    feedEnabled: false,
    fiscalYearStartMonth: 0,
    generatedUpdatesEnabled: false,
    gitBranchFormat: null,
    gitLinkbackDescriptionsEnabled: true,
    gitLinkbackMessagesEnabled: true,
    gitPublicLinkbackMessagesEnabled: false,
    hideNonPrimaryOrganizations: false,
    hipaaComplianceEnabled: false,
    id: organization.id,
    initiativeUpdateReminderFrequencyInWeeks: null,
    initiativeUpdateRemindersDay: "Friday",
    initiativeUpdateRemindersHour: 14,
    integrations: empty,
    ipRestrictions: null,
    labels: empty,
    linearAgentEnabled: false,
    linearAgentSettings: {},
    logoUrl: organization.logoUrl,
    loops: empty,
    name: organization.name,
    periodUploadVolume: 0,
    previousUrlKeys: [],
    projectLabels: empty,
    projectStatuses,
    projectUpdateReminderFrequencyInWeeks: 1,
    projectUpdateRemindersDay: "Friday",
    projectUpdateRemindersHour: 14,
    projectUpdatesReminderFrequency: "week",
    pullRequestIssueMode: "default",
    pullRequestTourEnabled: false,
    releaseChannel: "public",
    releasesEnabled: false,
    restrictAgentInvocationToMembers: false,
    restrictLabelManagementToAdmins: false,
    restrictTeamCreationToAdmins: false,
    roadmapEnabled: false,
    samlEnabled: false,
    samlSettings: null,
    scimEnabled: false,
    scimSettings: null,
    securitySettings: {},
    slaDayCount: "all",
    slackAutoCreateProjectChannel: false,
    slackProjectChannelIntegration: null,
    slackProjectChannelPrefix: "proj",
    slackProjectChannelsEnabled: false,
    subscription: null,
    suggestedBranchNameEnabled: true,
    teamSecuritySettings: {},
    teams: connection(teams, team),
    templates: empty,
    themeSettings: null,
    trialEndsAt: null,
    trialStartsAt: null,
    updatedAt: organization.createdAt,
    urlKey: organization.urlKey,
    userCount: organization.userCount,
    users: connection(people, user),
    workingDays: [1, 2, 3, 4, 5],
  });

  const workflowState = (state: WorkflowStateRecord) => ({
    archivedAt: null,
    color: state.color,
    createdAt: state.createdAt,
    description: null,
    id: state.id,
    inheritedFrom: null,
    issues: connection(allIssues().filter((i) => stateOf(i).id === state.id), issue),
    name: state.name,
    position: state.position,
    team: () => team(teams.find((t) => t.id === state.teamId) as Team),
    type: state.type,
    updatedAt: state.createdAt,
  });

  const team = (t: Team) => {
    const states = workflowStatesOf(t);
    const named = (name: string) => () => workflowState(states.find((s) => s.name === name) as WorkflowStateRecord);
    const teamIssues = () => allIssues().filter((i) => i.teamId === t.id);
    return {
      activeCycle: null,
      agentAutomationEnabled: false,
      aiDiscussionSummariesEnabled: false,
      aiThreadSummariesEnabled: false,
      allMembersCanJoin: !t.private,
      ancestors: [],
      archivedAt: null,
      autoArchivePeriod: 6,
      autoCloseChildIssues: false,
      autoCloseParentIssues: false,
      autoClosePeriod: null,
      autoCloseStateId: null,
      children: [],
      codingAgentEnabled: false,
      color: `#${hash(t.id, 6)}`,
      createdAt: t.createdAt,
      currentProgress: {},
      // [UNCERTAIN] the shape of the calendar feed's URL; the sandbox serves none.
      cycleCalenderUrl: `https://api.linear.app/calendar/cycles/${hash(`${t.id}/calendar`, 32)}`,
      cycleCooldownTime: 0,
      cycleDuration: 1,
      cycleIssueAutoAssignCompleted: true,
      cycleIssueAutoAssignStarted: true,
      cycleLockToActive: false,
      cycleStartDay: 1,
      cycles: empty,
      cyclesEnabled: false,
      defaultIssueEstimate: 1,
      defaultIssueState: named(DEFAULT_STATE),
      defaultProjectTemplate: null,
      defaultTemplateForMembers: null,
      defaultTemplateForMembersId: null,
      defaultTemplateForNonMembers: null,
      defaultTemplateForNonMembersId: null,
      description: t.description,
      displayName: t.name,
      draftWorkflowState: null,
      facets: [],
      gitAutomationStates: empty,
      groupIssueHistory: true,
      icon: null,
      id: t.id,
      inheritIssueEstimation: false,
      inheritProjectStatuses: false,
      inheritSlackAutoCreateProjectChannel: false,
      inheritWorkflowStatuses: false,
      initiativesEnabled: false,
      integrationsSettings: null,
      inviteHash: hash(`${t.id}/invite`, 16),
      // The sandbox archives nothing, so `includeArchived` changes nothing.
      issueCount: () => teamIssues().length,
      issueEstimationAllowZero: false,
      issueEstimationExtended: false,
      issueEstimationType: "notUsed",
      issueOrderingNoPriorityFirst: false,
      issueSortOrderDefaultToBottom: false,
      issues: connection(teamIssues(), issue),
      joinByDefault: null,
      key: t.key,
      labels: empty,
      ledInitiativeCount: 0,
      loops: empty,
      markedAsDuplicateWorkflowState: named("Duplicate"),
      members: connection(people, user),
      membership: null,
      memberships: empty,
      mergeWorkflowState: null,
      mergeableWorkflowState: null,
      name: t.name,
      organization: () => organizationView(),
      parent: null,
      pinnedResources: [],
      posts: [],
      private: t.private,
      progressHistory: {},
      projects: empty,
      protectedBy: null,
      protectedById: null,
      releasePipelines: empty,
      requirePriorityToLeaveTriage: false,
      resourceSections: [],
      restrictedBy: null,
      restrictedById: null,
      retiredAt: null,
      reviewWorkflowState: null,
      scimGroupName: null,
      scimManaged: false,
      securitySettings: {},
      setIssueSortOrderOnStateChange: "default",
      slackAutoCreateProjectChannel: null,
      slackIssueComments: true,
      slackIssueStatuses: true,
      slackNewIssue: true,
      startWorkflowState: null,
      states: connection(states, workflowState),
      templates: empty,
      timezone: "Etc/UTC",
      triageEnabled: false,
      triageIssueState: null,
      triageResponsibility: null,
      upcomingCycleCount: 2,
      updatedAt: t.updatedAt,
      viewerCanJoin: false,
      viewerCanLeave: true,
      viewerMembership: null,
      visibility: t.private ? "private" : "public",
      webhooks: empty,
    };
  };

  const issue = (record: IssueRecord) => {
    const t = teams.find((x) => x.id === record.teamId) as Team;
    const identifier = `${t.key}-${record.number}`;
    const slug = record.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60);
    const state = stateOf(record);
    const personOf = (id: string | null | undefined) => people.find((p) => p.id === id);
    const creator = personOf(record.creatorId);
    const assignee = personOf(record.assigneeId);
    const sortOrder = record.sortOrder ?? -record.number;
    const subscribers = [creator, assignee].filter((p, i, all): p is Person => p !== undefined && all.indexOf(p) === i);
    return {
      activitySummary: null,
      addedToCycleAt: null,
      addedToProjectAt: null,
      addedToTeamAt: record.createdAt,
      agentSessions: empty,
      aiAnalysis: null,
      aiPromptProgresses: empty,
      archivedAt: null,
      asksExternalUserRequester: null,
      asksRequester: null,
      assignee: assignee ? () => user(assignee) : null,
      attachments: empty,
      autoArchivedAt: null,
      autoClosedAt: null,
      boardOrder: 0,
      botActor: null,
      branchName: `${owner.displayName}/${identifier.toLowerCase()}-${slug}`.slice(0, 100),
      canceledAt: state.type === "canceled" ? record.updatedAt : null,
      children: empty,
      comments: empty,
      completedAt: state.type === "completed" ? record.updatedAt : null,
      createdAt: record.createdAt,
      creator: creator ? () => user(creator) : null,
      customerTicketCount: 0,
      cycle: null,
      delegate: null,
      description: record.description,
      descriptionState: null,
      documentContent: null,
      documents: empty,
      dueDate: record.dueDate ?? null,
      estimate: record.estimate ?? null,
      externalUserCreator: null,
      favorite: null,
      formerAttachments: empty,
      formerNeeds: empty,
      history: empty,
      id: record.id,
      identifier,
      incomingSuggestions: empty,
      inheritsSharedAccess: false,
      integrationSourceType: null,
      inverseRelations: empty,
      labelIds: [],
      labels: empty,
      lastAppliedTemplate: null,
      needs: empty,
      number: record.number,
      parent: null,
      previousIdentifiers: [],
      priority: record.priority,
      priorityLabel: PRIORITY_LABELS[record.priority] ?? "No priority",
      prioritySortOrder: sortOrder,
      project: null,
      projectMilestone: null,
      // Linear sends an array here, though the schema says JSONObject.
      reactionData: [],
      reactions: [],
      recurringIssueTemplate: null,
      relations: empty,
      releases: empty,
      sharedAccess: { disallowedIssueFields: [], isShared: false, sharedWithCount: 0, sharedWithUsers: [], viewerHasOnlySharedAccess: false },
      slaBreachesAt: null,
      slaHighRiskAt: null,
      slaMediumRiskAt: null,
      slaStartedAt: null,
      slaType: null,
      snoozedBy: null,
      snoozedUntilAt: null,
      sortOrder,
      sourceComment: null,
      startedAt: state.type === "started" ? record.updatedAt : null,
      startedTriageAt: null,
      state: () => workflowState(state),
      stateHistory: empty,
      subIssueSortOrder: null,
      subscribers: connection(subscribers, user),
      suggestions: empty,
      suggestionsGeneratedAt: null,
      summary: null,
      syncedWith: [],
      team: () => team(t),
      title: record.title,
      trashed: null,
      triagedAt: null,
      trusted: null,
      updatedAt: record.updatedAt,
      url: at(`issue/${identifier}/${slug}`),
    };
  };

  return { user, organization: organizationView, team, issue, workflowState, people, stateOf };
}
