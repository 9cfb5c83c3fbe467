/**
 * `queuectl status`: counts per state and the workers, in the seed's layout.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { json, localTime, palette, stateColor, table } from "../render.ts";
import { workerJson } from "../../json.ts";
import { EXIT } from "../../errors.ts";
import { JOB_STATES } from "../../job/state.ts";

export async function run(ctx: Context): Promise<number> {
  const { counts, workers } = await (await ctx.openQueue()).status();
  if (ctx.json) {
    ctx.io.out(json({ counts, workers: workers.map(workerJson) }));
    return EXIT.ok;
  }
  const p = palette(ctx.color);
  const digits = String(Math.max(counts.total, 0)).length;
  const line = (label: string, n: number, paint = (t: string) => t) =>
    `${paint(label.padEnd(15))}${String(n).padStart(digits)} job${n === 1 ? "" : "s"}\n`;
  let out = `${p.bold("Job Queue Status")}\n================\n`;
  for (const state of JOB_STATES) {
    out += line(state[0]!.toUpperCase() + state.slice(1), counts[state], stateColor(p, state));
  }
  out += line("Total", counts.total, p.bold);
  const live = workers.filter((v) => v.judgement.liveness === "alive");
  out += `\nWorkers: ${live.length} active\n`;
  if (workers.length) {
    out += table(
      p,
      ["ID", "PID", "STATE", "JOB", "DONE", "FAILED", "HEARTBEAT"],
      workers.map(({ worker: w, state }) => [
        w.id,
        String(w.pid),
        state === "gone" || state === "stale" ? p.red(state) : state,
        w.runningJobs.join(",") || "-",
        String(w.jobsDone),
        String(w.jobsFailed),
        localTime(w.heartbeatAt),
      ]),
    );
  }
  ctx.io.out(out);
  return EXIT.ok;
}
