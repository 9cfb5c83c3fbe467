/**
 * queuectl. `status`, `show` and `enqueue` start on a short path that loads only what they run
 * (lib/cli/lean.ts); every other command line goes to the full CLI (lib/cli/main.ts).
 *
 * @module
 */

import { processIo } from "./lib/cli/io.ts";
import { leanMain } from "./lib/cli/lean.ts";
import { lazy } from "./lib/lazy.ts";

const io = processIo();
const options = { entry: true };
Deno.exit(
  await leanMain(Deno.args, io, options) ??
    await (await lazy<typeof import("./lib/cli/main.ts")>(import.meta.url, "./lib/cli/main.ts"))
      .main(Deno.args, io, options),
);
