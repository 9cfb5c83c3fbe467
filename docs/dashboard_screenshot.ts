// deno-lint-ignore-file no-console -- a script that reports what it wrote
/**
 * Makes docs/dashboard.png, the README's picture of the dashboard: an hour of history (jobs
 * finished minute by minute, through the store as workers would have written them), real workers
 * running real jobs, and the overview in headless chromium, reduced to 64 colours with
 * `pngquant` (Debian's package) when it is there.
 *
 *   deno run -A docs/dashboard_screenshot.ts
 *
 * @module
 */

import { FakeClock } from "../lib/clock.ts";
import { decide } from "../lib/job/outcome.ts";
import { openSqliteStore } from "../lib/store/sqlite/open.ts";

const REPO = new URL("..", import.meta.url).pathname;
const OUT = `${REPO}docs/dashboard.png`;
const dir = await Deno.makeTempDir({ prefix: "queuectl-screenshot-" });
const db = `${dir}/queue.db`;
const env = { ...Deno.env.toObject(), QUEUECTL_DB: db, NO_COLOR: "1" };

async function queuectl(args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${REPO}main.ts`, ...args],
    env,
    cwd: dir,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout } = await child.output();
  if (code !== 0) throw new Error(`queuectl ${args.join(" ")} exited ${code}`);
  return new TextDecoder().decode(stdout);
}

// An hour of history, a minute at a time.
const commands = [
  "./build.sh --target web",
  "make test",
  "python etl.py --day 2026-11-30",
  "./thumbnails.sh uploads/",
  "rsync -a /srv/data backup:/data",
  "curl -fsS https://example.com/health",
];
const clock = new FakeClock(Date.now() - 58 * 60_000);
const store = await openSqliteStore(db, { synchronous: "NORMAL", busyTimeoutMs: 5000, clock });
await store.workerRegister({
  worker: {
    id: "w-history",
    pid: 1,
    host: "history",
    hostId: "history",
    pidStart: null,
    supervisorPid: null,
  },
});
for (let minute = 0; minute < 57; minute++) {
  const n = Math.max(2, 8 + Math.round(5 * Math.sin(minute / 6) + 3 * Math.sin(minute / 2.3)));
  for (let i = 0; i < n; i++) {
    const command = commands[(minute * 7 + i) % commands.length]!;
    await store.jobInsertMany({
      jobs: [{
        id: undefined,
        command: i === 3 && minute % 9 === 4 ? "./flaky-upload.sh --retry" : command,
        priority: 5,
        maxRetries: 0,
        timeoutMs: null,
        cwd: "/srv/app",
        env: {},
        runAt: null,
        delayMs: 0,
      }],
      defaultMaxRetries: 0,
    });
    clock.advance(200 + ((minute * 31 + i * 17) % 900));
    const [job] = await store.jobClaim({
      workerId: "w-history",
      host: "history",
      leaseMs: 60_000,
      limit: 1,
    });
    if (!job) continue;
    await store.attemptArm([{ jobId: job.id, attempt: job.attempts, workerId: "w-history" }]);
    clock.advance(300 + ((minute * 13 + i * 29) % 2500));
    const failed = job.command.startsWith("./flaky") || (minute * 3 + i) % 17 === 0;
    await store.jobFinish({
      jobId: job.id,
      attempt: job.attempts,
      workerId: "w-history",
      decision: decide(job, failed ? { kind: "exited", code: 1 } : { kind: "exited", code: 0 }, {
        base: 2,
        maxMs: 3_600_000,
      }),
    });
  }
  clock.set(Date.now() - (57 - minute) * 60_000);
}
await store.workerRemove({ ids: ["w-history"] });
await store.close();

// Now: workers at work, jobs waiting, one scheduled for tonight.
await queuectl(
  ["enqueue", "-"],
  [
    { command: "sleep 900 && echo scene 12 rendered", priority: 8 },
    { command: "sleep 600 && ./report.sh weekly", id: "weekly-report" },
    { command: "sleep 900 && echo reindexed", priority: 3 },
    { command: "./backup.sh", id: "nightly", run_at: "tomorrow 02:00" },
  ].map((j) => JSON.stringify(j)).join("\n"),
);
await queuectl(["enqueue", "-c", "sleep 600 && make release", "--priority", "9"]);
await queuectl(["worker", "start", "--count", "3", "--detach"]);
await new Promise((resolve) => setTimeout(resolve, 1500));

const dashboard = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "--quiet", `${REPO}main.ts`, "dashboard", "--port", "0"],
  env,
  stdout: "piped",
  stderr: "null",
}).spawn();
const reader = dashboard.stdout.pipeThrough(new TextDecoderStream()).getReader();
let banner = "";
while (!banner.includes("Ctrl-C to stop")) banner += (await reader.read()).value ?? "";
const base = /(http:\/\/[^/\s]+)\//.exec(banner)![1]!;
const token = Deno.readTextFileSync(`${db}.dashboard-token`).trim();
try {
  // deno-lint-ignore no-import-prefix -- a full npm: specifier, so that `deno run` of a URL works
  const { chromium } = await import("npm:playwright-core@1.65.1");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.goto(`${base}/login#token=${token}`);
  await page.waitForURL(`${base}/`);
  await page.waitForSelector("svg rect.ok");
  await page.waitForSelector(".host table");
  await page.screenshot({ path: OUT });
  await browser.close();
} finally {
  dashboard.kill("SIGINT");
  await dashboard.status;
  await queuectl(["worker", "stop", "--force"]);
}
try {
  const quant = await new Deno.Command("pngquant", {
    args: ["--force", "--quality", "60-90", "--output", OUT, "64", OUT],
  }).output();
  if (!quant.success) console.log("pngquant failed; the PNG keeps all its colours");
} catch {
  console.log("no pngquant here (apt-get install pngquant); the PNG keeps all its colours");
}
await Deno.remove(dir, { recursive: true });
console.log(`wrote ${OUT} (${Deno.statSync(OUT).size} bytes)`);
