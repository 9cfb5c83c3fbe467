/**
 * `--queue Q[,Q…]` as `list` and `worker run|start` take it.
 *
 * @module
 */

import { flagString } from "./args.ts";
import type { Context } from "./context.ts";
import { UsageError } from "../errors.ts";
import { queueNameProblem } from "../job/id.ts";

/** The queues named by `--queue`, each checked, repeats dropped; undefined when absent. */
export function queuesFlag(ctx: Context): string[] | undefined {
  const text = flagString(ctx.args, "queue");
  if (text === undefined) return undefined;
  const names = [...new Set(text.split(",").map((name) => name.trim()))];
  for (const name of names) {
    const problem = name === "" ? "is empty" : queueNameProblem(name);
    if (problem) {
      throw new UsageError(
        `Invalid value ${JSON.stringify(text)} for --queue: queue name ${
          JSON.stringify(name)
        } ${problem}`,
        { hint: "give queue names separated by commas, e.g. --queue mail,reports" },
      );
    }
  }
  return names;
}
