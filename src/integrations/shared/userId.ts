/** The one rule for user ids, in `shared/` so that the SDK, the HTTP API and the CLI hold every id to it alike. */
import { invalidInput } from "./errors.js";

/** Longest user id: ample for any identity provider's subject, and a bound on what a caller makes us store. */
export const MAX_USER_ID_LENGTH = 255;
/** What {@link isValidUserId} holds a user id to, in words for error messages. */
export const USER_ID_RULE = `a non-blank user id of at most ${MAX_USER_ID_LENGTH} characters, well-formed Unicode without control characters`;
/** Any C0 or C1 control character, DEL included (Unicode general category Cc). */
const CONTROL_CHARACTER = /\p{Cc}/u;

/**
 * The one rule for user ids: the SDK holds every userId to it, the verifier a
 * token's `sub`, and `autoflow-integrations token --user` its flag, so no path
 * stores an id another path would refuse. Both databases must store the id as given and keep it apart
 * from every other: PostgreSQL refuses NUL in text (a 500), and a lone
 * surrogate is encoded as U+FFFD, so `victim\ud800` and `victim\udfff` would
 * be one stored user. Hence well-formed Unicode (RFC 7519 §7.2 asks for UTF-8
 * claims anyway) and no control characters.
 */
export function isValidUserId(value: unknown): value is string {
  return (
    typeof value === "string" &&
    value.trim() !== "" &&
    value.length <= MAX_USER_ID_LENGTH &&
    value.isWellFormed() &&
    !CONTROL_CHARACTER.test(value)
  );
}

/** A schema error naming `userId` unless it keeps the rule. */
export function checkUserId(userId: unknown, provider: string): asserts userId is string {
  if (!isValidUserId(userId)) throw invalidInput("userId", `userId must be ${USER_ID_RULE}`, provider);
}
