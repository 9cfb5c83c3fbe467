// deno-lint-ignore-file no-console
/**
 * `deno task demo`: a short, real run of queuectl against a fresh database in a temporary
 * directory: jobs (one failing into the dead letter queue, one scheduled), two workers, status,
 * logs and metrics, then a clean stop. Every step is an ordinary CLI call, printed before it runs.
 *
 * @module
 */

const main = new URL("../main.ts", import.meta.url).href;
const dir = await Deno.makeTempDir({ prefix: "queuectl-demo-" });
const db = `${dir}/queue.db`;

function show(args: string[]): string {
  return args.map((a) => /[\s"'{}$;&|<>]/.test(a) ? `'${a}'` : a).join(" ");
}

async function q(...args: string[]): Promise<number> {
  console.log(`\n$ queuectl ${show(args)}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, "--db", db, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) console.log(`(exit ${code})`);
  return code;
}

console.log(`queuectl demo: a fresh queue in ${db}`);
try {
  await q("config", "set", "backoff-base", "1");
  await q("enqueue", '{"id":"hello","command":"echo hello from queuectl"}');
  await q("enqueue", "-c", "sleep 1 && echo slept one second", "--id", "slow");
  await q("enqueue", "-c", "echo urgent", "--id", "urgent", "--priority", "9");
  await q("enqueue", '{"id":"doomed","command":"echo trying >&2; exit 3","max_retries":1}');
  await q("enqueue", "-c", "date", "--id", "later", "--delay", "3s");
  await q("list");
  await q("worker", "start", "--count", "2", "--detach");
  await q("wait", "hello", "slow", "urgent", "doomed", "later", "--timeout", "30s");
  await q("status");
  await q("dlq", "list");
  await q("logs", "slow");
  await q("show", "doomed");
  await q("metrics");
  await q("worker", "stop");
} finally {
  await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, "--db", db, "worker", "stop", "--force"],
    stdout: "null",
    stderr: "null",
  }).output();
  await Deno.remove(dir, { recursive: true });
}
