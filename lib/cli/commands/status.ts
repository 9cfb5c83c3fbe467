/**
 * `queuectl status`: counts per state and the workers, in the seed's layout.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { json, localTime, palette, stateColor, table, workerJson } from "../render.ts";
import { EXIT } from "../../errors.ts";
import { JOB_STATES } from "../../job/state.ts";
import { processAlive } from "../../worker/process.ts";

export async function run(ctx: Context): Promise<number> {
  const { counts, workers } = await (await ctx.openQueue()).status();
  const host = Deno.hostname();
  const alive = workers.map((w) => w.host === host ? processAlive(w.pid, w.pidStart) : null);
  if (ctx.json) {
    ctx.io.out(json({ counts, workers: workers.map((w, i) => workerJson(w, alive[i]!)) }));
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
  const live = workers.filter((_, i) => alive[i] !== false);
  out += `\nWorkers: ${live.length} active\n`;
  if (workers.length) {
    out += table(
      p,
      ["ID", "PID", "STATE", "JOB", "DONE", "FAILED", "HEARTBEAT"],
      workers.map((w, i) => [
        w.id,
        String(w.pid),
        alive[i] === false ? p.red("gone") : w.state,
        w.currentJob ?? "-",
        String(w.jobsDone),
        String(w.jobsFailed),
        localTime(w.heartbeatAt),
      ]),
    );
  }
  ctx.io.out(out);
  return EXIT.ok;
}
