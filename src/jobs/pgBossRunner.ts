/**
 * pg-boss on the service's PostgreSQL: every instance registers the same
 * schedule and a worker; pg-boss creates one job per period (its cron is
 * deduplicated across instances) and hands each job to exactly one worker
 * (SKIP LOCKED). A "singleton" queue never runs two of a job at once.
 */
import PgBoss from "pg-boss";
import type { Logger } from "pino";
import { everyMinutesCron, type JobHandler, type JobReport, type JobRunner } from "./runner.js";

/** How often an idle worker looks for work; jobs are minutes apart, so seconds of latency are fine. */
const POLLING_SECONDS = 2;
/** A sweep that takes longer than this is stuck: pg-boss expires it so the next period can run. */
const EXPIRE_MINUTES = 15;

export type PgBossRunnerOptions = {
  connectionString: string;
  /** pg-boss's own schema (tests give each run one). */
  schema: string;
  applicationName?: string;
  logger?: Pick<Logger, "info" | "warn" | "error">;
};

/** SQLSTATEs of two instances setting up the same queue at once (seen when they start together). */
const RACE_CODES = new Set(["40P01", "40001", "23505"]);

/** Runs an idempotent setup step again when it lost a race with another instance doing the same. */
async function retryOnRace<T>(step: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (attempt >= attempts || typeof code !== "string" || !RACE_CODES.has(code)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.floor(Math.random() * 100)));
    }
  }
}

export class PgBossRunner implements JobRunner {
  readonly kind = "pg-boss" as const;
  private readonly handlers = new Map<string, JobHandler>();

  private constructor(
    private readonly boss: PgBoss,
    private readonly logger?: Pick<Logger, "info" | "warn" | "error">,
  ) {}

  static async start(options: PgBossRunnerOptions): Promise<PgBossRunner> {
    const boss = new PgBoss({
      connectionString: options.connectionString,
      schema: options.schema,
      application_name: options.applicationName ?? "autoflow-integrations:jobs",
      max: 3,
    });
    // pg-boss reports connection trouble (a database restart) as events; they must not crash the process.
    boss.on("error", (error) => options.logger?.warn({ err: error.message }, "job queue error"));
    await boss.start();
    return new PgBossRunner(boss, options.logger);
  }

  async schedule(name: string, everyMinutes: number, handler: JobHandler): Promise<void> {
    if (this.handlers.has(name)) throw new Error(`job ${name} is already scheduled`);
    this.handlers.set(name, handler);
    await retryOnRace(() => this.boss.createQueue(name, { name, policy: "singleton", expireInMinutes: EXPIRE_MINUTES, retryLimit: 0 }));
    await retryOnRace(() => this.boss.schedule(name, everyMinutesCron(everyMinutes)));
    await this.boss.work(name, { pollingIntervalSeconds: POLLING_SECONDS }, async ([job]) => {
      const started = Date.now();
      const report = await handler();
      this.logger?.info({ job: name, id: job?.id, ms: Date.now() - started, ...report }, "job finished");
      return report;
    });
  }

  async runNow(name: string): Promise<JobReport> {
    if (!this.handlers.has(name)) throw new Error(`no job named ${name}`);
    const id = await this.boss.send(name, {});
    // The singleton queue already holds one: wait for that one instead.
    if (id === null) throw new Error(`job ${name} is already queued or running`);
    for (;;) {
      const job = await this.boss.getJobById<object>(name, id, { includeArchive: true });
      if (job?.state === "completed") return (job.output ?? {}) as JobReport;
      if (job && ["failed", "cancelled"].includes(job.state)) throw new Error(`job ${name} ${job.state}: ${JSON.stringify(job.output)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: true, wait: true, timeout: 30_000 });
  }
}
