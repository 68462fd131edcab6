/**
 * Where scheduled work runs. One interface, two runners: in-process timers
 * for a single SQLite instance, pg-boss on PostgreSQL so that a job runs
 * once across all instances. Later scheduled work (Jira ticket sync) uses
 * the same runner.
 */

/** Counts a job reports (checked, refreshed, failed, ...), for logs and the CLI. */
export type JobReport = Record<string, number>;
export type JobHandler = () => Promise<JobReport>;

export interface JobRunner {
  readonly kind: "timers" | "pg-boss";
  /** Runs `handler` every `everyMinutes` (at least 1), once per period across every instance sharing this runner. */
  schedule(name: string, everyMinutes: number, handler: JobHandler): Promise<void>;
  /** Runs the job now, once across instances, and answers its report (the CLI's `sweep`, tests). */
  runNow(name: string): Promise<JobReport>;
  /** Stops scheduling; a job in flight finishes first. */
  stop(): Promise<void>;
}

/** Cron for "every n minutes" (pg-boss schedules with cron; 1 minute is its finest grain). */
export function everyMinutesCron(minutes: number): string {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 59) throw new Error(`a job period must be 1 to 59 whole minutes, got ${minutes}`);
  return minutes === 1 ? "* * * * *" : `*/${minutes} * * * *`;
}
