// deno-lint-ignore-file no-console
/**
 * `deno task demo`: a short, real run of queuectl against a fresh queue: jobs (one failing into
 * the dead letter queue, one scheduled, one cancelled), two workers, status, logs and metrics,
 * a paused queue (its job waits while another queue's runs, until a resume),
 * then a clean stop.
 * Every step is an ordinary CLI call, printed before it runs.
 *
 * `deno task demo` uses a new SQLite file in a temporary directory. `deno task demo --db
 * postgres://USER@HOST/DATABASE` runs the same steps on PostgreSQL, in a schema of its own
 * (`queuectl_demo_<pid>`, unless the URL names one with `?schema=`) that is dropped at the end.
 *
 * @module
 */

const main = new URL("../main.ts", import.meta.url).href;
const dir = await Deno.makeTempDir({ prefix: "queuectl-demo-" });

function argValue(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0) return Deno.args[i + 1];
  return Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

const given = argValue("db");
let db = `${dir}/queue.db`;
let dropSchema: (() => Promise<void>) | null = null;
if (given !== undefined && /^postgres(ql)?:\/\//.test(given)) {
  const url = new URL(given);
  const schema = url.searchParams.get("schema") ?? `queuectl_demo_${Deno.pid}`;
  const chosen = url.searchParams.has("schema");
  url.searchParams.set("schema", schema);
  db = url.href;
  if (!chosen) {
    dropSchema = async () => {
      // deno-lint-ignore no-import-prefix
      const { default: postgres } = await import("npm:postgres@3.4.9");
      const clean = new URL(db);
      clean.searchParams.delete("schema");
      const sql = postgres(clean.href, { onnotice: () => {}, max: 1 });
      try {
        await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await sql.end();
      }
    };
  }
} else if (given !== undefined) {
  db = given;
}

/** The URL without its password, for what the demo prints. */
function shown(location: string): string {
  if (!/^postgres(ql)?:\/\//.test(location)) return location;
  const url = new URL(location);
  url.password = "";
  return url.href;
}

function show(args: string[]): string {
  return args.map((a) => /[\s"'{}$;&|<>]/.test(a) ? `'${a}'` : a).join(" ");
}

// The queue's location travels in the environment, as QUEUECTL_DB; logs of detached workers of a
// PostgreSQL queue go to the data directory, here the demo's temporary one.
const env = { QUEUECTL_DB: db, XDG_DATA_HOME: dir };

async function q(...args: string[]): Promise<number> {
  console.log(`\n$ queuectl ${show(args)}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, ...args],
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) console.log(`(exit ${code})`);
  return code;
}

console.log(`queuectl demo: a fresh queue in ${shown(db)}`);
try {
  await q("config", "set", "backoff-base", "1");
  await q("enqueue", '{"id":"hello","command":"echo hello from queuectl"}');
  await q("enqueue", "-c", "sleep 1 && echo slept one second", "--id", "slow");
  await q("enqueue", "-c", "echo urgent", "--id", "urgent", "--priority", "9");
  await q("enqueue", '{"id":"doomed","command":"echo trying >&2; exit 3","max_retries":1}');
  await q("enqueue", "-c", "date", "--id", "later", "--delay", "3s");
  await q("enqueue", "-c", "sleep 600", "--id", "stuck", "--priority", "10");
  // A dependency: "after" runs only once "slow" has completed.
  await q("enqueue", "-c", "echo after slow", "--id", "after", "--after", "slow");
  await q(
    "schedule",
    "add",
    "tick",
    "--every",
    "1s",
    "-c",
    'echo "tick at $QUEUECTL_SCHEDULED_AT"',
  );
  await q("list");
  await q("worker", "start", "--count", "2", "--detach");
  // Pending or already running: either way it ends cancelled (a running one is killed).
  await q("cancel", "stuck", "--reason", "hangs forever");
  await q("wait", "hello", "slow", "urgent", "doomed", "later", "--timeout", "30s");
  await q("status");
  await q("wait", "after", "--timeout", "30s");
  await q("show", "after");
  await q("schedule", "list");
  await q("schedule", "remove", "tick");
  await q("show", "stuck");
  await q("dlq", "list");
  await q("logs", "slow");
  await q("show", "doomed");
  await q("metrics");
  // A paused queue: its jobs wait while the workers run others; a resume starts them at once.
  await q("pause", "mail");
  await q("enqueue", "-c", "echo mail sent", "--id", "mail-1", "--queue", "mail");
  await q("enqueue", "-c", "echo report built", "--id", "report", "--queue", "reports");
  await q("wait", "report", "--timeout", "30s");
  await q("queue", "set", "mail", "--concurrency", "1");
  await q("queue", "list");
  await q("status");
  await q("resume", "mail");
  await q("wait", "mail-1", "--timeout", "30s");
  await q("worker", "stop");
} finally {
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, "worker", "stop", "--force"],
    env,
    stdout: "null",
    stderr: "null",
  }).output();
  await dropSchema?.();
  await Deno.remove(dir, { recursive: true });
}
