/**
 * `queuectl status`: counts per state and the workers, in the seed's layout.
 *
 * @module
 */

import type { Context } from "../context.ts";
import {
  heartbeatAgo,
  json,
  localTime,
  palette,
  stateColor,
  table,
  workerState,
} from "../render.ts";
import { workerJson } from "../../json.ts";
import { EXIT } from "../../errors.ts";
import { JOB_STATES } from "../../job/state.ts";
import { iso } from "../../time.ts";
import { problemLines } from "../../worker/liveness.ts";

export async function run(ctx: Context): Promise<number> {
  const queue = await ctx.openQueue();
  const { counts, scheduled, workers, paused } = await queue.status();
  if (ctx.json) {
    ctx.io.out(json({
      counts: { ...counts, scheduled: scheduled.scheduled },
      workers: workers.map(workerJson),
      next_scheduled_at: iso(scheduled.nextAt),
      paused_queues: paused.names,
      paused_all: paused.pausedAll,
    }));
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  const digits = String(Math.max(counts.total, 0)).length;
  const line = (label: string, n: number, paint = (t: string) => t, note = "") =>
    `${paint(label.padEnd(15))}${String(n).padStart(digits)} job${n === 1 ? "" : "s"}${note}\n`;
  let out = `${p.bold("Job Queue Status")}\n================\n`;
  for (const state of JOB_STATES) {
    // The seed's five lines always; cancelled only once there is a cancelled job.
    if (state === "cancelled" && counts.cancelled === 0) continue;
    // Scheduled jobs are pending too, but no worker may take them yet: an idle worker next to
    // them is not stuck.
    const note = state === "pending" && scheduled.scheduled > 0
      ? ` (${counts.pending - scheduled.scheduled} due, ${scheduled.scheduled} scheduled; ` +
        `next at ${localTime(scheduled.nextAt)})`
      : "";
    out += line(
      state[0]!.toUpperCase() + state.slice(1),
      counts[state],
      stateColor(p, state),
      note,
    );
  }
  out += line("Total", counts.total, p.bold);
  // Only when something is paused: the seed's layout stays as it was otherwise.
  if (paused.pausedAll) out += `\n${p.yellow("Paused: every queue")} (new ones too)\n`;
  else if (paused.names.length > 0) {
    out += `\n${p.yellow("Paused queues:")} ${paused.names.join(", ")}\n`;
  }
  const active = workers.filter((w) => w.liveness.health === "ok").length;
  const stale = workers.filter((w) => w.liveness.state === "stale").length;
  out += `\nWorkers: ${active} active${stale > 0 ? `, ${stale} stale` : ""}\n`;
  if (workers.length) {
    // Workers of other hosts (a shared PostgreSQL queue): which host each runs on, since a pid
    // alone means nothing there. A queue with workers on this host only keeps its narrow table.
    const hosts = workers.some((w) => !w.liveness.local);
    out += table(
      p,
      ["ID", "PID", ...(hosts ? ["HOST"] : []), "STATE", "JOB", "DONE", "FAILED", "HEARTBEAT"],
      workers.map((w) => [
        w.worker.id,
        String(w.worker.pid),
        ...(hosts ? [w.worker.host] : []),
        workerState(p, w),
        w.worker.runningJobs.join(",") || "-",
        String(w.worker.jobsDone),
        String(w.worker.jobsFailed),
        heartbeatAgo(w),
      ]),
    );
    for (const problem of problemLines(workers)) out += `${problem}\n`;
  }
  ctx.io.out(out);
  return EXIT.ok;
}
