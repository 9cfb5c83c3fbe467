/**
 * A reference point for start-up, not a floor with a target: what any command that reads the
 * queue cannot avoid. It imports node:sqlite, opens the database given as the first argument and
 * reads the job counts, the way `status` does, with none of queuectl's modules.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

const db = new DatabaseSync(Deno.args[0]!, { timeout: 5000 });
db.prepare("SELECT state, sum(n) AS n FROM job_counts GROUP BY state").all();
db.close();
