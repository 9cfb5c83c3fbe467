/**
 * `queuectl completions SHELL`: prints a completion script made from the command table.
 *
 * @module
 */

import type { Context } from "../context.ts";
import { EXIT, UsageError } from "../../errors.ts";
import { completionScript, SHELLS } from "../completions.ts";
import type { Shell } from "../completions.ts";

export function run(ctx: Context): Promise<number> {
  const shell = ctx.args.positionals[0]!;
  if (!(SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(`Unknown shell "${shell}"`, {
      hint: `completions are made for ${SHELLS.join(", ")}`,
      typo: { input: shell, candidates: SHELLS },
    });
  }
  ctx.io.out(completionScript(shell as Shell));
  return Promise.resolve(EXIT.ok);
}
