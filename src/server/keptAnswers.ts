/**
 * Answers kept by the store's change token: a read whose answer is made
 * only from what the store holds (and the request's user and parameters,
 * which are its key) is answered again, as the same JSON text, while the
 * store's token is the one it was made under. A dashboard polling a user's
 * connections then costs one look at the token, not a read of the rows,
 * their public shaping and their serialization on every poll.
 *
 * The token is the store's promise (SqlVault.changeToken on SQLite): equal
 * at two moments exactly when nothing was committed in between, by any
 * connection. An answer is kept only when the token read before it was made
 * is still the token after (nothing changed while it was being made), and
 * never when there is no token (PostgreSQL, inside a transaction): then
 * every request makes its answer, as without this. The text handed out is
 * a string, so no caller can change what the next one is given.
 */
import { LRUCache } from "lru-cache";

/** The most JSON text kept over all answers of one route, with their keys, in UTF-16 code units (characters). */
export const KEPT_ANSWERS_SIZE = 8 * 2 ** 20;
/** The longest answer kept; a longer one (a user with thousands of connections) is made every time. */
export const KEPT_ANSWER_MAX = 256 * 2 ** 10;

export type ChangeToken = () => string | undefined;

/** An answer made: its body (sent as JSON), what the route needs of it besides its text, and until when it may be given again. */
export type MadeAnswer<E> = {
  body: unknown;
  extra: E;
  /**
   * Milliseconds on the answers' clock: given again only from `from` and before `until` (a health
   * envelope's max age either side of when it was checked), both ends excluded. Unset: while the token stands.
   */
  within?: { from: number; until: number };
  /** False: given to this request only (an answer that is about now, not about what the store holds). */
  keep?: false;
};

export type KeptAnswers<E> = {
  /**
   * The JSON text of the answer `make` makes for `key`, with its extra: the one kept for it when the
   * store's token is still the one it was made under (and its `until` has not passed), else `make`'s,
   * kept when the token did not change while it ran. A failure of `make` is the caller's, and keeps nothing.
   */
  json(key: readonly (string | number | boolean)[], make: () => Promise<MadeAnswer<E>>): Promise<{ text: string; extra: E }>;
  /** How many answers were given from what was kept, and how many were made (tests, figures). */
  readonly answered: { readonly kept: number; readonly made: number };
};

const within = (window: { from: number; until: number }, at: number): boolean => at > window.from && at < window.until;

export function keptAnswers<E = undefined>(token: ChangeToken | undefined, options: { size?: number; maxAnswer?: number; now?: () => number } = {}): KeptAnswers<E> {
  const now = options.now ?? Date.now;
  const kept = new LRUCache<string, { token: string; text: string; extra: E; within?: { from: number; until: number } }>({
    maxSize: options.size ?? KEPT_ANSWERS_SIZE,
    maxEntrySize: options.maxAnswer ?? KEPT_ANSWER_MAX,
    sizeCalculation: (entry, key) => entry.text.length + key.length,
  });
  const answered = { kept: 0, made: 0 };
  return {
    answered,
    async json(parts, make) {
      const before = token?.();
      const key = JSON.stringify(parts);
      if (before !== undefined) {
        const found = kept.get(key);
        if (found?.token === before && (found.within === undefined || within(found.within, now()))) {
          answered.kept++;
          return found;
        }
      }
      answered.made++;
      const made = await make();
      const answer = { text: JSON.stringify(made.body), extra: made.extra };
      // Kept under `before` only if nothing changed while it was made: then it is what the store held at `before`.
      if (made.keep !== false && before !== undefined && token?.() === before) kept.set(key, { token: before, ...answer, ...(made.within ? { within: made.within } : {}) });
      else kept.delete(key);
      return answer;
    },
  };
}
