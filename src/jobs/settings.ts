/** How often background jobs run and how much they do at once. */
export type JobSettings = {
  /** Minutes between refresh-ahead runs. */
  refreshAheadEveryMinutes: number;
  /** Refresh tokens expiring within this many minutes... */
  refreshAheadWindowMinutes: number;
  /** ...that were obtained at least this many hours ago (idle connections). */
  idleRefreshHours: number;
  /** Minutes between health sweeps. */
  healthSweepEveryMinutes: number;
  /** Connections worked on at once. */
  concurrency: number;
};

export const DEFAULT_JOB_SETTINGS: JobSettings = {
  refreshAheadEveryMinutes: 5,
  refreshAheadWindowMinutes: 10,
  idleRefreshHours: 12,
  healthSweepEveryMinutes: 30,
  concurrency: 4,
};
