/** Reading a Prometheus text exposition in tests: the sum of a metric's samples whose labels include the given ones. */
export function metricSum(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of exposition.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const [, key, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found.set(key as string, value as string);
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) sum += Number(match[3]);
  }
  return sum;
}
