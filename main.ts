import { main } from "./lib/cli/main.ts";
import { processIo } from "./lib/cli/io.ts";

Deno.exit(await main(Deno.args, processIo(), { entry: true }));
