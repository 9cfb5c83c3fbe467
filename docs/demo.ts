// deno-lint-ignore-file no-console
/**
 * `deno task demo`: a short, real run of queuectl against a fresh database in a temporary
 * directory. Every step is an ordinary CLI call, printed before it runs.
 *
 * @module
 */

const main = new URL("../main.ts", import.meta.url).href;
const dir = await Deno.makeTempDir({ prefix: "queuectl-demo-" });
const db = `${dir}/queue.db`;

async function q(...args: string[]): Promise<void> {
  console.log(`\n$ queuectl ${args.map((a) => /[\s"'{}]/.test(a) ? `'${a}'` : a).join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", main, "--db", db, ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) console.log(`(exit ${code})`);
}

console.log(`queuectl demo: database ${db}`);
await q("enqueue", '{"id":"hello","command":"echo hello from queuectl"}');
await q("enqueue", "-c", "sleep 1 && echo done sleeping", "--priority", "8");
await q("enqueue", '{"id":"doomed","command":"exit 3","max_retries":1}');
await q("enqueue", '{"id":"later","command":"date"}', "--delay", "1h");
await q("list");
await q("status");
await q("show", "doomed");
await Deno.remove(dir, { recursive: true });
