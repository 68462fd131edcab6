/** In-process timers: the runner of a single instance on SQLite. A run never overlaps the previous one. */
import type { Logger } from "pino";
import type { JobHandler, JobReport, JobRunner } from "./runner.js";

type Job = { handler: JobHandler; timer: NodeJS.Timeout; running?: Promise<JobReport> };

export class TimerRunner implements JobRunner {
  readonly kind = "timers" as const;
  private readonly jobs = new Map<string, Job>();

  constructor(private readonly logger?: Pick<Logger, "info" | "warn" | "error">) {}

  async schedule(name: string, everyMinutes: number, handler: JobHandler): Promise<void> {
    if (this.jobs.has(name)) throw new Error(`job ${name} is already scheduled`);
    const timer = setInterval(() => {
      this.runNow(name).catch(() => undefined);
    }, everyMinutes * 60_000);
    // Scheduled work never keeps the process alive on its own.
    timer.unref();
    this.jobs.set(name, { handler, timer });
  }

  runNow(name: string): Promise<JobReport> {
    const job = this.jobs.get(name);
    if (!job) return Promise.reject(new Error(`no job named ${name}`));
    // Overlapping runs would only repeat the same work: share the one in flight.
    if (job.running) return job.running;
    const started = Date.now();
    job.running = job
      .handler()
      .then(
        (report) => {
          this.logger?.info({ job: name, ms: Date.now() - started, ...report }, "job finished");
          return report;
        },
        (error: unknown) => {
          this.logger?.error({ job: name, err: error instanceof Error ? error.message : String(error) }, "job failed");
          throw error;
        },
      )
      .finally(() => {
        job.running = undefined;
      });
    return job.running;
  }

  async stop(): Promise<void> {
    for (const job of this.jobs.values()) clearInterval(job.timer);
    await Promise.allSettled([...this.jobs.values()].flatMap((job) => (job.running ? [job.running] : [])));
    this.jobs.clear();
  }
}
