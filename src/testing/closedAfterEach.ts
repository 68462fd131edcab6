/** Sandboxes a test file starts, each closed after the test that started it. */
import { afterEach } from "vitest";
import type { StartedSandbox } from "../sandbox/kit.js";

/** `start` with `defaults` under the test's options; every sandbox it started is closed after each test (once, if the test closed it). */
export function closedAfterEach<O extends object>(start: (options: O) => Promise<StartedSandbox>, defaults: Partial<O> = {}): (options?: O) => Promise<StartedSandbox> {
  const started: StartedSandbox[] = [];
  afterEach(async () => {
    for (const sandbox of started.splice(0)) await sandbox.close();
  });
  return async (options) => {
    const sandbox = await start({ ...defaults, ...options } as O);
    // A test may close one itself (to restart it on the same store): closed once, whoever asks first.
    const close = sandbox.close.bind(sandbox);
    let closing: Promise<void> | undefined;
    sandbox.close = () => (closing ??= close());
    started.push(sandbox);
    return sandbox;
  };
}
