// deno-lint-ignore-file no-console -- a benchmark's job is to print
/**
 * Dashboard: how long its pages take on a big queue.
 *
 * A real `queuectl dashboard` process serves each database (the 1M database of _bigdb.ts, a copy;
 * and a small one as the floor); the bench fetches the API the pages read, with the token, one
 * request at a time, round-robin over the two databases, and takes medians. Then a real browser
 * (Debian's chromium, as the tests drive it) loads the jobs page and a deep page of it on the big
 * queue, timed from navigation to the rendered table.
 *
 * @module
 */

import type { BenchModule, BenchOptions, Figure } from "./_common.ts";
import { DENO, MAIN, median, printFigure, standalone, tempDir } from "./_common.ts";
import { BIG, buildDb, cachedDb, describeShape, SMALL } from "./_bigdb.ts";

const FIRST_PAGE_MS = 300;
const DEEP_PAGE_MS = 500;

function rounds(options: BenchOptions): number {
  return options.quick ? 5 : 15;
}

interface Served {
  base: string;
  token: string;
  child: Deno.ChildProcess;
}

async function serve(db: string): Promise<Served> {
  const child = new Deno.Command(DENO, {
    args: ["run", "-A", "--quiet", MAIN, "--db", db, "dashboard", "--port", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("Ctrl-C to stop\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the dashboard did not start: ${out}`);
    out += value;
  }
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const port = /http:\/\/[^:]+:(\d+)\//.exec(out)?.[1];
  const token = Deno.readTextFileSync(`${db}.dashboard-token`).trim();
  return { base: `http://127.0.0.1:${port}`, token, child };
}

/**
 * A place in the middle of the big queue's scheduled jobs (due 1–7 days after it was built, at
 * most 12 h ago): about half of them come before it, so the Scheduled page from there is a deep one.
 */
const MID_SCHEDULED = `${Date.now() + 4 * 86_400_000}.0`;

/** What a page reads, with whether it is a first page or a deep one (and so its target). */
const REQUESTS: { name: string; path: string; kind: "first" | "deep" | "context" }[] = [
  { name: "jobs, first page (All)", path: "/api/jobs", kind: "first" },
  { name: "jobs, first page of pending", path: "/api/jobs?q=state:pending", kind: "first" },
  { name: "dead letter queue, first page", path: "/api/jobs?q=state:dead", kind: "first" },
  { name: "overview", path: "/api/overview", kind: "first" },
  { name: "jobs, deep page (before #1000)", path: "/api/jobs?before=1000", kind: "deep" },
  {
    name: "completed, deep page (before #1500)",
    path: "/api/jobs?q=state:completed&before=1500",
    kind: "deep",
  },
  {
    name: "search cmd:, first page",
    path: `/api/jobs?q=${encodeURIComponent('cmd:"task.sh 42"')}`,
    kind: "first",
  },
  {
    name: "search that finds nothing (whole scan budget)",
    path: `/api/jobs?q=${encodeURIComponent("cmd:no-such-command")}`,
    kind: "first",
  },
  {
    name: "search created:<6h (time bound)",
    path: `/api/jobs?q=${encodeURIComponent("created:<6h")}`,
    kind: "first",
  },
  { name: "scheduled, first page (soonest)", path: "/api/scheduled", kind: "first" },
  {
    name: "scheduled, deep page (after about half)",
    path: `/api/scheduled?after=${MID_SCHEDULED}`,
    kind: "deep",
  },
  {
    name: "scheduled, search that finds nothing (whole scan budget)",
    path: `/api/scheduled?q=${encodeURIComponent("cmd:no-such-command")}`,
    kind: "first",
  },
  {
    name: "jobs, search due:later, first page",
    path: `/api/jobs?q=${encodeURIComponent("due:later")}`,
    kind: "first",
  },
  {
    name: "count of dead jobs matching cmd:",
    path: `/api/count?q=${encodeURIComponent("state:dead cmd:flaky")}`,
    kind: "context",
  },
  { name: "page shell + app.js", path: "/assets/app.js", kind: "context" },
];

async function timed(s: Served, path: string): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(`${s.base}${path}`, {
    headers: { authorization: `Bearer ${s.token}` },
  });
  await response.arrayBuffer();
  const ms = performance.now() - t0;
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return ms;
}

/** A real browser on the big queue: navigation to rendered rows. */
async function browserTimes(
  s: Served,
  n: number,
): Promise<{ first: number[]; deep: number[]; scheduled: number[]; blank: number[] }> {
  // The bench's only npm import, loaded here so that nothing else pays for it.
  // deno-lint-ignore no-import-prefix -- a full npm: specifier, so that `deno run` of a URL works
  const { chromium } = await import("npm:playwright-core@1.65.1");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${s.base}/login#token=${s.token}`);
    await page.waitForURL(`${s.base}/`);
    const times = {
      first: [] as number[],
      deep: [] as number[],
      scheduled: [] as number[],
      blank: [] as number[],
    };
    for (let i = -1; i < n; i++) {
      for (
        const [key, path, selector] of [
          ["first", "/jobs", "main table a.id"],
          ["deep", "/jobs?before=1000", "main table a.id"],
          ["scheduled", "/scheduled", "main table a.id"],
          // The floor: the same document and module, a page that reads no data (sign-in).
          ["blank", "/login", "form.login"],
        ] as const
      ) {
        const t0 = performance.now();
        await page.goto(`${s.base}${path}`);
        await page.waitForSelector(selector);
        if (i >= 0) times[key].push(performance.now() - t0);
      }
    }
    return times;
  } finally {
    await browser.close();
  }
}

export const dashboard: BenchModule = {
  title: "Dashboard",
  method: (options) =>
    `Big database: ${describeShape(BIG)} (a copy of the cached one); floor: ${
      describeShape(SMALL)
    }. Each is served by a real \`queuectl dashboard\` process; the bench fetches what each page ` +
    `reads (\`/api/…\`, with the token), ${rounds(options)} rounds round-robin over every ` +
    `request and both databases after one warm-up round; median round-trip time. Targets: a ` +
    `first page ≤ ${FIRST_PAGE_MS} ms, a deep page ≤ ${DEEP_PAGE_MS} ms, at 1M. Browser rows: ` +
    `chromium (headless) navigates to the jobs page, a deep page and the scheduled page on the big ` +
    `queue, timed ` +
    `until the table is rendered (document, module, session and page data), medians of ` +
    `${rounds(options)}; their floor is the sign-in page (the same document and module, no data).`,

  async run(options: BenchOptions): Promise<Figure[]> {
    const dir = await tempDir("dashboard");
    const servers: Served[] = [];
    try {
      const small = `${dir.path}/small.db`;
      await buildDb(small, SMALL, Date.now());
      const cached = await cachedDb(BIG, (line) => console.log(line));
      const big = `${dir.path}/big.db`;
      Deno.copyFileSync(cached, big);
      const smallServer = await serve(small);
      servers.push(smallServer);
      const bigServer = await serve(big);
      servers.push(bigServer);
      const times = new Map<string, number[]>();
      for (let round = -1; round < rounds(options); round++) {
        for (const r of REQUESTS) {
          for (const [which, s] of [["small", smallServer], ["big", bigServer]] as const) {
            const ms = await timed(s, r.path);
            if (round < 0) continue;
            const key = `${which} ${r.name}`;
            times.set(key, [...(times.get(key) ?? []), ms]);
          }
        }
      }
      const figures: Figure[] = [];
      for (const r of REQUESTS) {
        const value = median(times.get(`big ${r.name}`)!);
        const floor = median(times.get(`small ${r.name}`)!);
        const limit = r.kind === "first" ? FIRST_PAGE_MS : r.kind === "deep" ? DEEP_PAGE_MS : null;
        const figure: Figure = {
          section: "Dashboard",
          name: `${limit === null ? "context: " : ""}${r.name} at 1M`,
          value,
          unit: "ms",
          floor,
          floorName: "same at 1k",
          ratio: value / floor,
          target: limit === null ? "" : `≤ ${limit} ms`,
          pass: limit === null ? null : value <= limit,
        };
        printFigure(figure);
        figures.push(figure);
      }
      const browser = await browserTimes(bigServer, rounds(options));
      for (
        const [key, name, limit] of [
          ["first", "browser: jobs page rendered", FIRST_PAGE_MS],
          ["deep", "browser: deep page rendered", DEEP_PAGE_MS],
          ["scheduled", "browser: scheduled page rendered", FIRST_PAGE_MS],
        ] as const
      ) {
        const value = median(browser[key]);
        const floor = median(browser.blank);
        const figure: Figure = {
          section: "Dashboard",
          name: `${name} at 1M`,
          value,
          unit: "ms",
          floor,
          floorName: "the sign-in page, no data",
          ratio: value / floor,
          target: `≤ ${limit} ms`,
          pass: value <= limit,
        };
        printFigure(figure);
        figures.push(figure);
      }
      return figures;
    } finally {
      for (const s of servers) {
        try {
          s.child.kill("SIGINT");
        } catch { /* gone */ }
        await s.child.status;
      }
      dir.dispose();
    }
  },
};

if (import.meta.main) await standalone(dashboard);
