/**
 * `tokenMasked`: what a user sees of a stored secret. The contract allows at
 * most the first 4 and the last 4 characters; shorter secrets show less, so
 * that never more than a third of a secret is visible.
 */
const MAX_VISIBLE_EACH_SIDE = 4;

export function maskSecret(secret: string): string {
  const visible = Math.min(MAX_VISIBLE_EACH_SIDE, Math.floor(secret.length / 6));
  if (visible === 0) return "****";
  return `${secret.slice(0, visible)}****${secret.slice(-visible)}`;
}
