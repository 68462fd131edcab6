/**
 * The Linear sandbox's GraphQL schema: the types it serves, with every field
 * Linear's schema gives them (checked against the schema @linear/sdk ships, by
 * test/fidelity/linear.test.ts), because the SDK's generated documents select
 * every scalar field of a type and a missing one fails the whole query.
 *
 * Three kinds of type:
 * - served: every field, each with a value (null where Linear allows null and
 *   the sandbox has nothing, an empty connection where it has none);
 * - connections (`<Node>Connection`, `<Node>Edge`): Linear's uniform shape;
 * - references (`REFERENCE_TYPES`): objects the sandbox never has (projects,
 *   cycles, comments, ...), declared with `id` alone so that a served field
 *   pointing at one can be selected as the SDK selects it (`project { id }`);
 *   they always answer null or an empty list, and asking more of them is
 *   refused as Linear refuses a field it does not know.
 */
import type { FieldArguments, Schema } from "./sandboxGraphql.js";

/** Objects the sandbox never holds: `id` only (every one of them is a Linear `Node`). */
export const REFERENCE_TYPES = [
  "AgentSession", "AiPromptProgress", "Attachment", "Comment", "CustomerNeed", "Cycle", "Document", "DocumentContent", "Draft", "ExternalUser",
  "Facet", "Favorite", "GitAutomationState", "IdentityProvider", "InitiativeUpdate", "Integration", "IntegrationsSettings", "IssueDraft",
  "IssueHistory", "IssueLabel", "IssueRelation", "IssueStateSpan", "IssueSuggestion", "Post", "Project", "ProjectLabel", "ProjectMilestone",
  "ProjectUpdate", "Release", "ReleasePipeline", "Summary", "TeamMembership", "TeamPinnedResource", "TeamResourceSection", "Template",
  "TriageResponsibility", "Webhook", "WorkflowDefinition",
] as const;

/** The nodes of the connections the served types have: Linear's `{ edges, nodes, pageInfo }` and `{ cursor, node }`. */
const CONNECTION_NODES = [
  "Issue", "Team", "User", "WorkflowState", "AgentSession", "AiPromptProgress", "Attachment", "Comment", "CustomerNeed", "Cycle", "Document",
  "Draft", "Facet", "GitAutomationState", "Integration", "IssueDraft", "IssueHistory", "IssueLabel", "IssueRelation", "IssueStateSpan",
  "IssueSuggestion", "Project", "ProjectLabel", "ReleasePipeline", "Release", "TeamMembership", "Template", "Webhook", "WorkflowDefinition",
];

/** The types the sandbox answers in full (fields in Linear's alphabetical order). */
const SERVED: Schema = {
  User: {
    active: "Boolean!", admin: "Boolean!", app: "Boolean!", archivedAt: "DateTime", assignedIssues: "IssueConnection!",
    avatarBackgroundColor: "String!", avatarUrl: "String", calendarHash: "String", canAccessAnyPublicTeam: "Boolean!", createdAt: "DateTime!",
    createdIssueCount: "Int!", createdIssues: "IssueConnection!", delegatedIssues: "IssueConnection!", description: "String", disableReason: "String",
    displayName: "String!", drafts: "DraftConnection!", email: "String!", feedFacets: "FacetConnection!", gitHubUserId: "String", guest: "Boolean!",
    hasGitHubCodeAccess: "Boolean!", id: "ID!", identityProvider: "IdentityProvider", initials: "String!", inviteHash: "String!",
    isAssignable: "Boolean!", isMe: "Boolean!", isMentionable: "Boolean!", issueDrafts: "IssueDraftConnection!", lastSeen: "DateTime",
    name: "String!", organization: "Organization!", owner: "Boolean!", statusEmoji: "String", statusLabel: "String", statusUntilAt: "DateTime",
    supportsAgentSessions: "Boolean!", teamMemberships: "TeamMembershipConnection!", teams: "TeamConnection!", timezone: "String", title: "String",
    updatedAt: "DateTime!", url: "String!",
  },
  Organization: {
    agentAutomationEnabled: "Boolean!", aiAddonEnabled: "Boolean!", aiDiscussionSummariesEnabled: "Boolean!", aiProviderConfiguration: "JSONObject",
    aiTelemetryEnabled: "Boolean!", aiThreadSummariesEnabled: "Boolean!", allowMembersToInvite: "Boolean", allowedAiProviders: "[String!]!",
    allowedAuthServices: "[String!]!", allowedFileUploadContentTypes: "[String!]", archivedAt: "DateTime", authSettings: "JSONObject!",
    codeIntelligenceEnabled: "Boolean!", codeIntelligenceRepository: "String", codingAgentEnabled: "Boolean!", codingAgentSettings: "JSONObject!",
    createdAt: "DateTime!", createdIssueCount: "Int!", customerCount: "Int!", customersConfiguration: "JSONObject!", customersEnabled: "Boolean!",
    defaultFeedSummarySchedule: "FeedSummarySchedule", defaultHomeView: "String", defaultHomeViewTargetId: "String", deletionRequestedAt: "DateTime",
    facets: "[Facet!]!", feedEnabled: "Boolean!", fiscalYearStartMonth: "Float!", generatedUpdatesEnabled: "Boolean!", gitBranchFormat: "String",
    gitLinkbackDescriptionsEnabled: "Boolean!", gitLinkbackMessagesEnabled: "Boolean!", gitPublicLinkbackMessagesEnabled: "Boolean!",
    hideNonPrimaryOrganizations: "Boolean!", hipaaComplianceEnabled: "Boolean!", id: "ID!", initiativeUpdateReminderFrequencyInWeeks: "Float",
    initiativeUpdateRemindersDay: "Day!", initiativeUpdateRemindersHour: "Float!", integrations: "IntegrationConnection!",
    ipRestrictions: "[OrganizationIpRestriction!]", labels: "IssueLabelConnection!", linearAgentEnabled: "Boolean!",
    linearAgentSettings: "JSONObject!", logoUrl: "String", loops: "WorkflowDefinitionConnection!", name: "String!", periodUploadVolume: "Float!",
    previousUrlKeys: "[String!]!", projectLabels: "ProjectLabelConnection!", projectStatuses: "[ProjectStatus!]!",
    projectUpdateReminderFrequencyInWeeks: "Float", projectUpdateRemindersDay: "Day!", projectUpdateRemindersHour: "Float!",
    projectUpdatesReminderFrequency: "ProjectUpdateReminderFrequency!", pullRequestIssueMode: "String!", pullRequestTourEnabled: "Boolean!",
    releaseChannel: "ReleaseChannel!", releasesEnabled: "Boolean!", restrictAgentInvocationToMembers: "Boolean",
    restrictLabelManagementToAdmins: "Boolean", restrictTeamCreationToAdmins: "Boolean", roadmapEnabled: "Boolean!", samlEnabled: "Boolean!",
    samlSettings: "JSONObject", scimEnabled: "Boolean!", scimSettings: "JSONObject", securitySettings: "JSONObject!", slaDayCount: "SLADayCountType!",
    slackAutoCreateProjectChannel: "Boolean!", slackProjectChannelIntegration: "Integration", slackProjectChannelPrefix: "String!",
    slackProjectChannelsEnabled: "Boolean!", subscription: "PaidSubscription", suggestedBranchNameEnabled: "Boolean!",
    teamSecuritySettings: "JSONObject!", teams: "TeamConnection!", templates: "TemplateConnection!", themeSettings: "JSONObject",
    trialEndsAt: "DateTime", trialStartsAt: "DateTime", updatedAt: "DateTime!", urlKey: "String!", userCount: "Int!", users: "UserConnection!",
    workingDays: "[Float!]!",
  },
  Team: {
    activeCycle: "Cycle", agentAutomationEnabled: "Boolean!", aiDiscussionSummariesEnabled: "Boolean!", aiThreadSummariesEnabled: "Boolean!",
    allMembersCanJoin: "Boolean", ancestors: "[Team!]!", archivedAt: "DateTime", autoArchivePeriod: "Float!", autoCloseChildIssues: "Boolean",
    autoCloseParentIssues: "Boolean", autoClosePeriod: "Float", autoCloseStateId: "String", children: "[Team!]!", codingAgentEnabled: "Boolean!",
    color: "String", createdAt: "DateTime!", currentProgress: "JSONObject!", cycleCalenderUrl: "String!", cycleCooldownTime: "Float!",
    cycleDuration: "Float!", cycleIssueAutoAssignCompleted: "Boolean!", cycleIssueAutoAssignStarted: "Boolean!", cycleLockToActive: "Boolean!",
    cycleStartDay: "Float!", cycles: "CycleConnection!", cyclesEnabled: "Boolean!", defaultIssueEstimate: "Float!",
    defaultIssueState: "WorkflowState", defaultProjectTemplate: "Template", defaultTemplateForMembers: "Template",
    defaultTemplateForMembersId: "String", defaultTemplateForNonMembers: "Template", defaultTemplateForNonMembersId: "String", description: "String",
    displayName: "String!", draftWorkflowState: "WorkflowState", facets: "[Facet!]!", gitAutomationStates: "GitAutomationStateConnection!",
    groupIssueHistory: "Boolean!", icon: "String", id: "ID!", inheritIssueEstimation: "Boolean!", inheritProjectStatuses: "Boolean!",
    inheritSlackAutoCreateProjectChannel: "Boolean!", inheritWorkflowStatuses: "Boolean!", initiativesEnabled: "Boolean!",
    integrationsSettings: "IntegrationsSettings", inviteHash: "String!", issueCount: "Int!", issueEstimationAllowZero: "Boolean!",
    issueEstimationExtended: "Boolean!", issueEstimationType: "String!", issueOrderingNoPriorityFirst: "Boolean!",
    issueSortOrderDefaultToBottom: "Boolean!", issues: "IssueConnection!", joinByDefault: "Boolean", key: "String!", labels: "IssueLabelConnection!",
    ledInitiativeCount: "Int!", loops: "WorkflowDefinitionConnection!", markedAsDuplicateWorkflowState: "WorkflowState", members: "UserConnection!",
    membership: "TeamMembership", memberships: "TeamMembershipConnection!", mergeWorkflowState: "WorkflowState",
    mergeableWorkflowState: "WorkflowState", name: "String!", organization: "Organization!", parent: "Team",
    pinnedResources: "[TeamPinnedResource!]!", posts: "[Post!]!", private: "Boolean!", progressHistory: "JSONObject!", projects: "ProjectConnection!",
    protectedBy: "Team", protectedById: "String", releasePipelines: "ReleasePipelineConnection!", requirePriorityToLeaveTriage: "Boolean!",
    resourceSections: "[TeamResourceSection!]!", restrictedBy: "Team", restrictedById: "String", retiredAt: "DateTime",
    reviewWorkflowState: "WorkflowState", scimGroupName: "String", scimManaged: "Boolean!", securitySettings: "JSONObject!",
    setIssueSortOrderOnStateChange: "String!", slackAutoCreateProjectChannel: "Boolean", slackIssueComments: "Boolean!",
    slackIssueStatuses: "Boolean!", slackNewIssue: "Boolean!", startWorkflowState: "WorkflowState", states: "WorkflowStateConnection!",
    templates: "TemplateConnection!", timezone: "String!", triageEnabled: "Boolean!", triageIssueState: "WorkflowState",
    triageResponsibility: "TriageResponsibility", upcomingCycleCount: "Float!", updatedAt: "DateTime!", viewerCanJoin: "Boolean!",
    viewerCanLeave: "Boolean!", viewerMembership: "TeamMembership", visibility: "TeamVisibility!", webhooks: "WebhookConnection!",
  },
  Issue: {
    activitySummary: "JSONObject", addedToCycleAt: "DateTime", addedToProjectAt: "DateTime", addedToTeamAt: "DateTime",
    agentSessions: "AgentSessionConnection!", aiAnalysis: "JSONObject", aiPromptProgresses: "AiPromptProgressConnection!", archivedAt: "DateTime",
    asksExternalUserRequester: "ExternalUser", asksRequester: "User", assignee: "User", attachments: "AttachmentConnection!",
    autoArchivedAt: "DateTime", autoClosedAt: "DateTime", boardOrder: "Float!", botActor: "ActorBot", branchName: "String!", canceledAt: "DateTime",
    children: "IssueConnection!", comments: "CommentConnection!", completedAt: "DateTime", createdAt: "DateTime!", creator: "User",
    customerTicketCount: "Int!", cycle: "Cycle", delegate: "User", description: "String", descriptionState: "String",
    documentContent: "DocumentContent", documents: "DocumentConnection!", dueDate: "TimelessDate", estimate: "Float",
    externalUserCreator: "ExternalUser", favorite: "Favorite", formerAttachments: "AttachmentConnection!", formerNeeds: "CustomerNeedConnection!",
    history: "IssueHistoryConnection!", id: "ID!", identifier: "String!", incomingSuggestions: "IssueSuggestionConnection!",
    inheritsSharedAccess: "Boolean!", integrationSourceType: "IntegrationService", inverseRelations: "IssueRelationConnection!",
    labelIds: "[String!]!", labels: "IssueLabelConnection!", lastAppliedTemplate: "Template", needs: "CustomerNeedConnection!", number: "Float!",
    parent: "Issue", previousIdentifiers: "[String!]!", priority: "Float!", priorityLabel: "String!", prioritySortOrder: "Float!", project: "Project",
    projectMilestone: "ProjectMilestone", reactionData: "JSONObject!", reactions: "[Reaction!]!", recurringIssueTemplate: "Template",
    relations: "IssueRelationConnection!", releases: "ReleaseConnection!", sharedAccess: "IssueSharedAccess!", slaBreachesAt: "DateTime",
    slaHighRiskAt: "DateTime", slaMediumRiskAt: "DateTime", slaStartedAt: "DateTime", slaType: "String", snoozedBy: "User",
    snoozedUntilAt: "DateTime", sortOrder: "Float!", sourceComment: "Comment", startedAt: "DateTime", startedTriageAt: "DateTime",
    state: "WorkflowState!", stateHistory: "IssueStateSpanConnection!", subIssueSortOrder: "Float", subscribers: "UserConnection!",
    suggestions: "IssueSuggestionConnection!", suggestionsGeneratedAt: "DateTime", summary: "Summary", syncedWith: "[ExternalEntityInfo!]",
    team: "Team!", title: "String!", trashed: "Boolean", triagedAt: "DateTime", trusted: "Boolean", updatedAt: "DateTime!", url: "String!",
  },
  WorkflowState: {
    archivedAt: "DateTime", color: "String!", createdAt: "DateTime!", description: "String", id: "ID!", inheritedFrom: "WorkflowState",
    issues: "IssueConnection!", name: "String!", position: "Float!", team: "Team!", type: "String!", updatedAt: "DateTime!",
  },
  PageInfo: {
    endCursor: "String", hasNextPage: "Boolean!", hasPreviousPage: "Boolean!", startCursor: "String",
  },
  IssuePayload: {
    issue: "Issue", lastSyncId: "Float!", success: "Boolean!",
  },
  ProjectStatus: {
    archivedAt: "DateTime", color: "String!", createdAt: "DateTime!", description: "String", id: "ID!", indefinite: "Boolean!",
    inheritedFrom: "ProjectStatus", name: "String!", position: "Float!", team: "Team", teamId: "String", type: "ProjectStatusType!",
    updatedAt: "DateTime!",
  },
  PaidSubscription: {
    archivedAt: "DateTime", cancelAt: "DateTime", canceledAt: "DateTime", collectionMethod: "String!", createdAt: "DateTime!", creator: "User",
    id: "ID!", nextBillingAt: "DateTime", organization: "Organization!", pendingChangeType: "String", seats: "Float!", seatsMaximum: "Float",
    seatsMinimum: "Float", type: "String!", updatedAt: "DateTime!",
  },
  IssueSharedAccess: {
    disallowedIssueFields: "[IssueSharedAccessDisallowedField!]!", isShared: "Boolean!", sharedWithCount: "Int!", sharedWithUsers: "[User!]!",
    viewerHasOnlySharedAccess: "Boolean!",
  },
  ActorBot: {
    avatarUrl: "String", id: "ID", name: "String", subType: "String", type: "String!", userDisplayName: "String",
  },
  Reaction: {
    archivedAt: "DateTime", comment: "Comment", createdAt: "DateTime!", emoji: "String!", externalUser: "ExternalUser", id: "ID!",
    initiativeUpdate: "InitiativeUpdate", issue: "Issue", post: "Post", projectUpdate: "ProjectUpdate", updatedAt: "DateTime!", user: "User",
  },
  ExternalEntityInfo: {
    id: "String!", metadata: "ExternalEntityInfoMetadata", service: "ExternalSyncService!",
  },
  ExternalEntityInfoGithubMetadata: {
    number: "Float", owner: "String", repo: "String",
  },
  ExternalEntityInfoJiraMetadata: {
    issueKey: "String", issueTypeId: "String", projectId: "String",
  },
  ExternalEntitySlackMetadata: {
    channelId: "String", channelName: "String", isFromSlack: "Boolean!", messageUrl: "String",
  },
  OrganizationIpRestriction: {
    description: "String", enabled: "Boolean!", range: "String!", type: "String!",
  },
};

const connections: Schema = Object.fromEntries(
  CONNECTION_NODES.flatMap((node) => [
    [`${node}Connection`, { edges: `[${node}Edge!]!`, nodes: `[${node}!]!`, pageInfo: "PageInfo!" }],
    [`${node}Edge`, { cursor: "String!", node: `${node}!` }],
  ]),
);

export const SCHEMA: Schema = {
  Query: {
    issue: "Issue!",
    issues: "IssueConnection!",
    organization: "Organization!",
    team: "Team!",
    teams: "TeamConnection!",
    user: "User!",
    viewer: "User!",
    workflowState: "WorkflowState!",
  },
  Mutation: { issueCreate: "IssuePayload!" },
  Subscription: {},
  ...SERVED,
  ...connections,
  ...Object.fromEntries(REFERENCE_TYPES.map((name) => [name, { id: "ID!" }])),
};

/** Union types: their members. */
export const UNIONS: Readonly<Record<string, readonly string[]>> = {
  ExternalEntityInfoMetadata: ["ExternalEntityInfoGithubMetadata", "ExternalEntityInfoJiraMetadata", "ExternalEntitySlackMetadata"],
};

/** Linear's connection arguments; `filter` and extras vary by field. */
const page = (extra: Record<string, string> = {}): Record<string, string> => ({
  after: "String", before: "String", first: "Int", includeArchived: "Boolean", last: "Int", orderBy: "PaginationOrderBy", ...extra,
});

/** The arguments of every field that takes any. */
export const ARGUMENTS: FieldArguments = {
  "Query.issue": { id: "String!" },
  "Query.issues": page({ filter: "IssueFilter", sort: "[IssueSortInput!]" }),
  "Query.team": { id: "String!" },
  "Query.teams": page({ filter: "TeamFilter" }),
  // What the SDK's lazy relations ask for (`await issue.state`, `await issue.creator`).
  "Query.user": { id: "String!" },
  "Query.workflowState": { id: "String!" },
  "Mutation.issueCreate": { input: "IssueCreateInput!" },
  ...Object.fromEntries(["User.assignedIssues", "User.createdIssues", "User.delegatedIssues", "Issue.children", "WorkflowState.issues"].map((f) => [f, page({ filter: "IssueFilter" })])),
  ...Object.fromEntries(
    [
      "User.drafts", "User.feedFacets", "User.issueDrafts", "User.teamMemberships", "Organization.integrations", "Organization.loops",
      "Team.gitAutomationStates", "Team.loops", "Team.memberships", "Team.webhooks", "Issue.agentSessions", "Issue.history",
      "Issue.incomingSuggestions", "Issue.inverseRelations", "Issue.relations",
    ].map((f) => [f, page()]),
  ),
  "User.teams": page({ filter: "TeamFilter" }),
  "Organization.teams": page({ filter: "TeamFilter" }),
  "Organization.labels": page({ filter: "IssueLabelFilter" }),
  "Team.labels": page({ filter: "IssueLabelFilter" }),
  "Issue.labels": page({ filter: "IssueLabelFilter" }),
  "Organization.projectLabels": page({ filter: "ProjectLabelFilter" }),
  "Organization.templates": page({ filter: "NullableTemplateFilter" }),
  "Team.templates": page({ filter: "NullableTemplateFilter" }),
  "Organization.users": page({ includeDisabled: "Boolean" }),
  "Team.cycles": page({ filter: "CycleFilter" }),
  "Team.issueCount": { includeArchived: "Boolean" },
  "Team.issues": page({ filter: "IssueFilter", includeSubTeams: "Boolean" }),
  "Team.members": page({ filter: "UserFilter", includeDisabled: "Boolean", sort: "[UserSortInput!]" }),
  "Team.membership": { userId: "String!" },
  "Team.projects": page({ filter: "ProjectFilter", includeSubTeams: "Boolean", sort: "[ProjectSortInput!]" }),
  "Team.releasePipelines": page({ filter: "ReleasePipelineFilter" }),
  "Team.states": page({ filter: "WorkflowStateFilter" }),
  "Issue.aiPromptProgresses": page({ filter: "AiPromptProgressFilter" }),
  "Issue.attachments": page({ filter: "AttachmentFilter" }),
  "Issue.formerAttachments": page({ filter: "AttachmentFilter" }),
  "Issue.comments": page({ filter: "CommentFilter" }),
  "Issue.documents": page({ filter: "DocumentFilter" }),
  "Issue.formerNeeds": page({ filter: "CustomerNeedFilter" }),
  "Issue.needs": page({ filter: "CustomerNeedFilter" }),
  "Issue.releases": page({ filter: "ReleaseFilter" }),
  "Issue.stateHistory": { after: "String", before: "String", first: "Int", last: "Int" },
  "Issue.subscribers": page({ filter: "UserFilter", includeDisabled: "Boolean" }),
  "Issue.suggestions": page({ filter: "IssueSuggestionFilter" }),
};

/** Input object types: their fields (a literal argument is checked against them). */
export const INPUTS: Schema = {
  IssueCreateInput: {
    assigneeId: "String", completedAt: "DateTime", createAsUser: "String", createdAt: "DateTime", cycleId: "String", delegateId: "String",
    description: "String", descriptionData: "JSON", displayIconUrl: "String", dueDate: "TimelessDate", estimate: "Int", id: "String",
    inheritsSharedAccess: "Boolean", labelIds: "[String!]", lastAppliedTemplateId: "String", parentId: "String", preserveSortOrderOnCreate: "Boolean",
    priority: "Int", prioritySortOrder: "Float", projectId: "String", projectMilestoneId: "String", referenceCommentId: "String", releaseIds: "[String!]",
    slaBreachesAt: "DateTime", slaStartedAt: "DateTime", slaType: "SLADayCountType", sortOrder: "Float", sourceCommentId: "String",
    sourcePullRequestCommentId: "String", stateId: "String", subIssueSortOrder: "Float", subscriberIds: "[String!]", teamId: "String!",
    templateId: "String", title: "String", useDefaultTemplate: "Boolean",
  },
};
