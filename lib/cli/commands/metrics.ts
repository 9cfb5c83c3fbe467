/**
 * `queuectl metrics`: the metrics dashboard, once, as JSON, or redrawn every second (`--watch`).
 *
 * @module
 */

import type { Context } from "../context.ts";
import { flagDuration } from "../duration_flag.ts";
import { flagBool } from "../args.ts";
import { clip, json, palette, stateColor, table } from "../render.ts";
import type { Palette } from "../render.ts";
import { EXIT, UsageError } from "../../errors.ts";
import { metricsJson } from "../../json.ts";
import type { JobState } from "../../job/state.ts";
import { JOB_STATES } from "../../job/state.ts";
import type { Metrics } from "../../metrics.ts";
import { percentile } from "../../metrics.ts";
import { formatDuration } from "../../time.ts";

const DAY_MS = 86_400_000;
/** `--watch` reads the figures at least this often, since rates move with time alone. */
const REREAD_MS = 10_000;
const BARS = "▁▂▃▄▅▆▇█";

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
    // As in status: cancelled only once there is a cancelled job.
    JOB_STATES.filter((st) => st !== "cancelled" || (m.counts[st] ?? 0) > 0)
      .map((st: JobState) => `${stateColor(p, st)(st)} ${m.counts[st]}`).join("  ") +
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
      m.workers.map((w) => {
        const uptime = Math.max(1, m.generatedAt - w.startedAt);
        return [
          w.id,
          String(w.pid),
          w.state === "gone" || w.state === "stale" ? p.red(w.state) : w.state,
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
    const m = await queue.metrics(sinceMs);
    return ctx.json ? json(metricsJson(m, detailed)) : renderDashboard(p, m, detailed);
  };
  if (!watch) {
    ctx.io.out(await frame());
    return EXIT.ok;
  }
  // --watch: redraw every second, in place on a terminal (alternate screen), repeated blocks when
  // piped. The figures are read again only when the queue changed (or every REREAD_MS, as rates
  // move with time), so watching an idle queue reads nothing.
  const terminal = ctx.io.stdoutIsTerminal && !ctx.json;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  if (terminal) ctx.io.out("\x1b[?1049h\x1b[?25l");
  try {
    let text = "";
    let mark = queue.changeMark();
    let readAt = -Infinity;
    let changed = true;
    while (!stop.signal.aborted) {
      if (changed || performance.now() - readAt >= REREAD_MS) {
        mark = queue.changeMark();
        readAt = performance.now();
        text = await frame();
      }
      if (terminal) ctx.io.out(`\x1b[H\x1b[2J${text}\n${p.dim("Ctrl-C to quit")}`);
      else ctx.io.out(ctx.json ? text : `${text}\n`);
      ctx.io.flush();
      const next = performance.now() + 1000;
      changed = await queue.waitForChange(mark, 1000, stop.signal);
      // A change redraws at the next second, not at once: the screen moves once a second.
      const left = next - performance.now();
      if (changed && left > 0 && !stop.signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          stop.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    if (terminal) ctx.io.out("\x1b[?25h\x1b[?1049l");
  }
  return EXIT.ok;
}
