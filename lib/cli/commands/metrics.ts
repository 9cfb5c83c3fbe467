/**
 * `queuectl metrics`: the metrics dashboard, once, as JSON, or redrawn every second (`--watch`).
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagDuration } from "../duration_flag.ts";
import { flagBool } from "../args.ts";
import { clip, json, palette, stateColor, table, workerState } from "../render.ts";
import type { Palette } from "../render.ts";
import { EXIT, UsageError } from "../../errors.ts";
import { JOB_STATES } from "../../job/state.ts";
import type { StatsSummary } from "../../metrics.ts";
import { percentile, ratePerMinute } from "../../metrics.ts";
import type { Queue } from "../../queue.ts";
import type { JobCounts } from "../../store/store.ts";
import { formatDuration, iso } from "../../time.ts";
import type { JudgedWorker } from "../../worker/liveness.ts";

const DAY_MS = 86_400_000;
const BARS = "▁▂▃▄▅▆▇█";

/** Every figure of the dashboard, in base units; what `--json` prints. */
export interface Metrics {
  generatedAt: number;
  since: number;
  counts: JobCounts;
  stats: StatsSummary;
  succeeded: number;
  finished: number;
  throughput: { m1: number; m15: number; m60: number };
  workers: JudgedWorker[];
}

async function gather(queue: Queue, sinceMs: number): Promise<Metrics> {
  const now = queue.clock.now();
  const since = now - sinceMs;
  const [{ counts, workers }, stats] = await Promise.all([queue.status(), queue.stats(since)]);
  const o = stats.outcomes;
  const finished = o.completed + o.failed + o.timeout + o.spawn_failed + o.lost;
  const completedPerMinute = new Map([...stats.perMinute].map(([m, v]) => [m, v.completed]));
  return {
    generatedAt: now,
    since,
    counts,
    stats,
    succeeded: o.completed,
    finished,
    throughput: {
      m1: ratePerMinute(completedPerMinute, now, 1),
      m15: ratePerMinute(completedPerMinute, now, 15),
      m60: ratePerMinute(completedPerMinute, now, 60),
    },
    workers,
  };
}

function round(value: number | null, digits = 2): number | null {
  return value === null ? null : Number(value.toFixed(digits));
}

/** The JSON document: every figure with its unit in the field name or beside it. */
export function metricsJson(m: Metrics, detailed: boolean): Record<string, unknown> {
  const s = m.stats;
  const firstAttempts = m.finished - s.retryAttempts;
  const out: Record<string, unknown> = {
    generated_at: iso(m.generatedAt),
    window: { since: iso(m.since), seconds: Math.round((m.generatedAt - m.since) / 1000) },
    counts: m.counts,
    success_rate: {
      ratio: m.finished ? round(m.succeeded / m.finished, 4) : null,
      succeeded_attempts: m.succeeded,
      finished_attempts: m.finished,
    },
    outcomes: s.outcomes,
    throughput: {
      unit: "completed jobs per minute",
      last_1m: round(m.throughput.m1),
      last_15m: round(m.throughput.m15),
      last_60m: round(m.throughput.m60),
    },
    run_time: {
      unit: "ms",
      p50: round(percentile(s.runTime, 0.5, s.maxRunMs), 1),
      p95: round(percentile(s.runTime, 0.95, s.maxRunMs), 1),
      max: s.maxRunMs,
    },
    queue_wait: {
      unit: "ms",
      p50: round(percentile(s.queueWait, 0.5), 1),
      p95: round(percentile(s.queueWait, 0.95), 1),
    },
    retries: {
      jobs_retried: s.retriedJobs,
      retry_attempts: s.retryAttempts,
      attempts_per_job: firstAttempts > 0 ? round(m.finished / firstAttempts, 3) : null,
    },
    oldest_due: s.oldestDueAt === null ? null : {
      job: s.oldestDueJob,
      waiting_seconds: round((m.generatedAt - s.oldestDueAt) / 1000, 1),
    },
    top_failing: s.topFailing.map((f) => ({
      command: f.command,
      failures: f.failures,
      last_error: f.lastError,
      last_exit_code: f.lastExitCode,
    })),
  };
  if (detailed) {
    out.workers = m.workers.map(({ worker: w, liveness }) => {
      const uptime = Math.max(1, m.generatedAt - w.startedAt);
      return {
        id: w.id,
        pid: w.pid,
        state: liveness.state,
        jobs_done: w.jobsDone,
        jobs_failed: w.jobsFailed,
        busy_share: round(Math.min(1, w.busyMs / uptime), 3),
        uptime_seconds: Math.round(uptime / 1000),
      };
    });
    const nowMinute = Math.floor(m.generatedAt / 60_000);
    out.per_minute = Array.from({ length: 60 }, (_, i) => {
      const minute = nowMinute - 59 + i;
      const entry = s.perMinute.get(minute) ?? { finished: 0, completed: 0 };
      return { minute: iso(minute * 60_000), finished: entry.finished, completed: entry.completed };
    });
  }
  return out;
}

function ms(value: number | null): string {
  return value === null ? "-" : formatDuration(value);
}

function perMinuteChart(m: Metrics): string {
  const nowMinute = Math.floor(m.generatedAt / 60_000);
  const values = Array.from(
    { length: 60 },
    (_, i) => m.stats.perMinute.get(nowMinute - 59 + i)?.finished ?? 0,
  );
  const max = Math.max(...values);
  if (max === 0) return "  (no attempts finished in the last hour)\n";
  const bars = values.map((v) => v === 0 ? " " : BARS[Math.min(7, Math.floor((v / max) * 7.999))]);
  return `  ${bars.join("")}  max ${max}/min\n  ${"60 min ago".padEnd(57)}now\n`;
}

/** The dashboard for people. */
export function renderDashboard(p: Palette, m: Metrics, detailed: boolean): string {
  const s = m.stats;
  const window = formatDuration(m.generatedAt - m.since);
  const title = `Metrics Dashboard (last ${window})`;
  let out = `${p.bold(title)}\n${"=".repeat(title.length)}\n`;
  const line = (label: string, value: string) => `${p.bold(label.padEnd(13))}${value}\n`;
  out += line(
    "Jobs",
    JOB_STATES.map((st) => `${stateColor(p, st)(st)} ${m.counts[st]}`).join("  ") +
      `  total ${m.counts.total}`,
  );
  out += line(
    "Success",
    m.finished
      ? `${
        (100 * m.succeeded / m.finished).toFixed(1)
      }% (${m.succeeded} of ${m.finished} finished attempts)`
      : "- (no attempts finished)",
  );
  const rate = (v: number) => `${v < 10 ? v.toFixed(1) : Math.round(v)}/min`;
  out += line(
    "Throughput",
    `${rate(m.throughput.m1)} (1m)  ${rate(m.throughput.m15)} (15m)  ${
      rate(m.throughput.m60)
    } (1h)`,
  );
  out += line(
    "Run time",
    `p50 ${ms(percentile(s.runTime, 0.5, s.maxRunMs))}  p95 ${
      ms(percentile(s.runTime, 0.95, s.maxRunMs))
    }  max ${ms(s.maxRunMs)}`,
  );
  out += line(
    "Queue wait",
    `p50 ${ms(percentile(s.queueWait, 0.5))}  p95 ${ms(percentile(s.queueWait, 0.95))}`,
  );
  const first = m.finished - s.retryAttempts;
  out += line(
    "Retries",
    `${s.retriedJobs} job${s.retriedJobs === 1 ? "" : "s"} retried, ${s.retryAttempts} retry ` +
      `attempt${s.retryAttempts === 1 ? "" : "s"}, ${
        first > 0 ? (m.finished / first).toFixed(2) : "-"
      } attempts per job`,
  );
  out += line(
    "Oldest due",
    s.oldestDueAt === null
      ? "nothing waiting"
      : `job ${s.oldestDueJob}, waiting ${formatDuration(m.generatedAt - s.oldestDueAt)}`,
  );
  if (s.topFailing.length) {
    out += `\n${p.bold("Top failing commands")}\n` + table(
      p,
      ["FAILURES", "EXIT", "LAST ERROR", "COMMAND"],
      s.topFailing.map((f) => [
        String(f.failures),
        f.lastExitCode === null ? "-" : String(f.lastExitCode),
        clip(f.lastError ?? "-", 32),
        clip(f.command, 40),
      ]),
    );
  }
  if (detailed) {
    out += `\n${p.bold("Workers")}\n`;
    out += m.workers.length === 0 ? "  none\n" : table(
      p,
      ["ID", "PID", "STATE", "DONE", "FAILED", "BUSY", "UPTIME"],
      m.workers.map((judged) => {
        const w = judged.worker;
        const uptime = Math.max(1, m.generatedAt - w.startedAt);
        return [
          w.id,
          String(w.pid),
          workerState(p, judged),
          String(w.jobsDone),
          String(w.jobsFailed),
          `${Math.round(100 * Math.min(1, w.busyMs / uptime))}%`,
          formatDuration(uptime),
        ];
      }),
    );
    out += `\n${p.bold("Attempts finished per minute")}\n${perMinuteChart(m)}`;
  }
  return out;
}

export async function run(ctx: Context): Promise<number> {
  const detailed = flagBool(ctx.args, "detailed");
  const watch = flagBool(ctx.args, "watch");
  const sinceMs = flagDuration(ctx.args, "since") ?? DAY_MS;
  if (sinceMs < 60_000) throw new UsageError("--since must be at least 1m");
  const queue = await ctx.openQueue();
  const p = palette(ctx.color);
  const frame = async () => {
    const m = await gather(queue, sinceMs);
    return ctx.json ? json(metricsJson(m, detailed)) : renderDashboard(p, m, detailed);
  };
  if (!watch) {
    ctx.io.out(await frame());
    return EXIT.ok;
  }
  // --watch: redraw in place on a terminal (alternate screen), repeated blocks when piped.
  const terminal = ctx.io.stdoutIsTerminal && !ctx.json;
  let stopped = false;
  let wake = () => {};
  const onSignal = () => {
    stopped = true;
    wake();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  if (terminal) ctx.io.out("\x1b[?1049h\x1b[?25l");
  try {
    while (!stopped) {
      const text = await frame();
      if (terminal) ctx.io.out(`\x1b[H\x1b[2J${text}\n${p.dim("Ctrl-C to quit")}`);
      else ctx.io.out(ctx.json ? text : `${text}\n`);
      ctx.io.flush();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (terminal) ctx.io.out("\x1b[?25h\x1b[?1049l");
  }
  return EXIT.ok;
}
