/**
 * Integration SDK v1: the frozen Tier 1 contract.
 *
 * Field for field as published in the v1 contract (seed 000). Renaming or
 * removing anything here is a major version bump; additive fields ship in
 * minor releases. The contract's `interface ... & TMetadata` is not valid
 * TypeScript, so those two shapes are type aliases with the same fields.
 */

/** The five error types shared by every Tier 1 connector and Jira ticket-sync. */
export type Tier1ErrorType = "auth" | "rate-limit" | "schema" | "network" | "upstream";

export type Tier1OAuthStartResult = {
  authUrl: string;
  state: string;
  expiresInSeconds: number;
  codeVerifier?: string; // PKCE connectors only
};

export interface Tier1ConnectorLifecycle<CredentialPublic, Health> {
  beginOAuth(userId: string): Tier1OAuthStartResult;
  completeOAuth(params: { code: string; state: string }): Promise<CredentialPublic>;
  connectApiKey(params: { userId: string; apiKey?: string; accessToken?: string }): Promise<CredentialPublic>;
  listConnections(userId: string): Promise<CredentialPublic[]> | CredentialPublic[];
  testConnection(userId: string): Promise<Record<string, string | undefined>>;
  health(userId: string): Promise<Health>;
  disconnect(userId: string, credentialId: string): Promise<boolean> | boolean;
}

export type Tier1ConnectionPublic<TAuthMethod extends string, TMetadata> = {
  id: string;
  userId: string;
  authMethod: TAuthMethod;
  tokenMasked: string;
  createdAt: string;
  revokedAt?: string;
} & TMetadata;

export type Tier1ConnectionHealth<TAuthMethod extends string, TMetadata> = {
  status: "ok" | "degraded" | "down";
  checkedAt: string; // ISO-8601
  authMethod?: TAuthMethod;
  tokenRefreshStatus?: "not_applicable" | "healthy" | "failed";
  details: {
    auth: boolean;
    apiReachable: boolean;
    rateLimited: boolean;
    errorType?: "auth" | "rate-limit" | "schema" | "network" | "upstream";
    message?: string;
  };
} & TMetadata;

/** Every value of {@link Tier1ErrorType}, in the contract's order. */
export const TIER1_ERROR_TYPES: readonly Tier1ErrorType[] = ["auth", "rate-limit", "schema", "network", "upstream"];
