/**
 * The dashboard's HTTP surface, route by route: authentication, the Host check, the origin check,
 * --read-only, the headers, paging, the bulk caps and the live stream. Every walk goes over the
 * route table itself, so a new route is covered by being added.
 */

import assert from "node:assert/strict";
import type { Job } from "../../lib/job/job.ts";
import { Auth } from "../../lib/web/auth.ts";
import { ASSETS } from "../../lib/web/assets.ts";
import { BULK_CAP, ROUTES } from "../../lib/web/handler.ts";
import type { Route } from "../../lib/web/handler.ts";
import { SEARCH_SCAN_LIMIT } from "../../lib/queue.ts";
import { treeDigest } from "../helpers/digest.ts";
import { insertJob, makeJob } from "../helpers/factory.ts";
import { openTestStore } from "../helpers/temp.ts";
import { within } from "../helpers/poll.ts";
import { addSchedule, ORIGIN, PORT, TOKEN, webFixture } from "./_fixture.ts";
import type { WebFixture } from "./_fixture.ts";

/** A body that passes validation for each route that takes one (the rest take none). */
function bodyFor(route: Route): unknown {
  if (route.path === "/api/login") return { token: TOKEN };
  if (route.path === "/api/dlq/retry") return { ids: ["d1"] };
  if (route.path.startsWith("/api/jobs/")) return { ids: ["d1"] };
  return {};
}

const changing = ROUTES.filter((r) => r.changes !== "nothing");
const session = ROUTES.filter((r) => r.access === "session");

async function deadJob(f: WebFixture, id = "d1", command = "exit 1"): Promise<Job> {
  return await makeJob(f.store, f.clock, "dead", { id, command, maxRetries: 0 });
}

Deno.test("the route table: one route per method and path, GET changes nothing, examples match", () => {
  const seen = new Set<string>();
  for (const route of ROUTES) {
    const key = `${route.method} ${route.path}`;
    assert.ok(!seen.has(key), `${key} twice`);
    seen.add(key);
    if (route.method === "GET") assert.equal(route.changes, "nothing", key);
    else assert.notEqual(route.changes, "nothing", `${key}: a POST that changes nothing`);
    const pattern = new RegExp(`^${route.path.replace(/:[a-z]+/g, "[^/]+")}(\\?.*)?$`);
    assert.match(route.example, pattern, key);
  }
  assert.ok(changing.some((r) => r.changes === "queue"), "some route changes the queue");
});

Deno.test("every session route refuses a request without credentials, a wrong token or a forged cookie", async () => {
  await using f = await webFixture();
  const other = new Auth("another-token-of-enough-length-0123456789", {
    clock: f.clock,
    cookieName: f.auth.cookieName,
  });
  const forged = `${f.auth.cookieName}=${await other.session()}`;
  for (const route of session) {
    for (
      const auth of [
        "none",
        { bearer: "wrong" },
        { bearer: `${TOKEN}x` },
        { bearer: TOKEN.slice(0, -1) },
        { cookie: forged },
        { cookie: `${f.auth.cookieName}=s1.zzzzzzzz.AAAA` },
        { cookie: `${f.auth.cookieName}=${TOKEN}` },
      ] as const
    ) {
      const response = await f.request(route.example, {
        method: route.method,
        auth,
        ...(route.method === "POST" ? { body: bodyFor(route) } : {}),
      });
      await response.body?.cancel();
      const what = `${route.method} ${route.example} with ${JSON.stringify(auth)}`;
      if (route.path.startsWith("/api/")) assert.equal(response.status, 401, what);
      else {
        assert.equal(response.status, 303, what);
        assert.equal(
          response.headers.get("location"),
          `/login?next=${encodeURIComponent(route.example)}`,
          what,
        );
      }
    }
  }
  // Public routes hold no data and need no credentials.
  for (const route of ROUTES.filter((r) => r.access === "public" && r.method === "GET")) {
    const response = await f.request(route.example, { auth: "none" });
    await response.body?.cancel();
    assert.ok(response.status < 300, `${route.example}: ${response.status}`);
  }
});

Deno.test("a session expires after seven days, and a changed token ends every session", async () => {
  await using f = await webFixture();
  assert.equal((await f.request("/api/session")).status, 200);
  f.clock.advance(6 * 86_400_000);
  assert.equal((await f.request("/api/session")).status, 200);
  f.clock.advance(86_400_000 + 1000);
  assert.equal((await f.request("/api/session")).status, 401);
});

Deno.test("the Host header must name this server: anything else is refused (DNS rebinding)", async () => {
  await using f = await webFixture();
  const good = [
    `127.0.0.1:${PORT}`,
    `localhost:${PORT}`,
    `LOCALHOST:${PORT}`,
    `localhost.:${PORT}`,
    `[::1]:${PORT}`,
  ];
  const bad = [
    `evil.example:${PORT}`,
    `127.0.0.1:${PORT + 1}`,
    "127.0.0.1",
    `localhost.evil.example:${PORT}`,
    `127.0.0.1.nip.io:${PORT}`,
    `[::2]:${PORT}`,
    "",
    null,
  ];
  for (const route of ROUTES) {
    for (const host of bad) {
      const response = await f.request(route.example, {
        method: route.method,
        host,
        ...(route.method === "POST" ? { body: bodyFor(route) } : {}),
      });
      assert.equal(response.status, 403, `${route.example} for host ${host}`);
      assert.match(await response.text(), /does not answer for that host name/);
    }
  }
  for (const host of good) {
    const response = await f.request("/api/session", { host });
    await response.body?.cancel();
    assert.equal(response.status, 200, `host ${host}`);
  }
  assert.ok(f.logs.some((l) => l.includes('refused a request for host "evil.example:8642"')));
});

Deno.test("every route that changes something refuses other origins (CSRF), also with a valid session", async () => {
  await using f = await webFixture();
  await deadJob(f);
  await addSchedule(f);
  const before = await treeDigest(f.dir);
  const foreign: { origin: string | null; headers?: Record<string, string> }[] = [
    { origin: "http://evil.example" },
    { origin: `http://127.0.0.1:${PORT + 1}` }, // same site, another origin
    { origin: `http://localhost:${PORT}` }, // another origin for the browser
    { origin: `https://127.0.0.1:${PORT}` },
    { origin: "null" },
    { origin: null, headers: { "sec-fetch-site": "cross-site" } },
    { origin: null, headers: { "sec-fetch-site": "same-site" } },
    { origin: null }, // a browser always sends one of them; a cookie alone is not enough
  ];
  for (const route of changing) {
    for (const { origin, headers } of foreign) {
      const response = await f.request(route.example, {
        method: "POST",
        body: bodyFor(route),
        origin,
        ...(headers ? { headers } : {}),
      });
      assert.equal(
        response.status,
        403,
        `${route.example} from ${origin} ${JSON.stringify(headers ?? {})}`,
      );
      await response.body?.cancel();
    }
  }
  // A cross-site form post (what a CSRF page sends) is refused before it is read.
  const form = await f.request("/api/dlq/retry", {
    method: "POST",
    body: "ids=d1",
    type: "application/x-www-form-urlencoded",
    origin: "http://evil.example",
    headers: { "sec-fetch-site": "cross-site" },
  });
  assert.equal(form.status, 403);
  await form.body?.cancel();
  assert.deepEqual(await treeDigest(f.dir), before, "nothing changed");
  // The dashboard's own pages pass (Origin, or Sec-Fetch-Site without it), and so does a
  // program with the token.
  const oks = [
    { origin: ORIGIN },
    { origin: null, headers: { "sec-fetch-site": "same-origin" } },
    { origin: null, auth: "bearer" as const },
  ];
  for (let i = 0; i < oks.length; i++) await deadJob(f, `ok${i}`);
  for (const [i, ok] of oks.entries()) {
    const response = await f.request("/api/dlq/retry", {
      method: "POST",
      body: { ids: [`ok${i}`] },
      ...ok,
    });
    assert.equal(response.status, 200, JSON.stringify(ok));
    await response.body?.cancel();
  }
});

Deno.test("--read-only refuses every route that changes the queue with 405, and changes nothing", async () => {
  await using f = await webFixture({ readOnly: true });
  await deadJob(f);
  await addSchedule(f);
  const before = await treeDigest(f.dir);
  const queueRoutes = ROUTES.filter((r) => r.changes === "queue");
  assert.ok(queueRoutes.length > 0);
  for (const route of queueRoutes) {
    for (const body of [bodyFor(route), { query: "", limit: 10 }]) {
      const response = await f.request(route.example, { method: route.method, body });
      assert.equal(response.status, 405, route.example);
      assert.match(await response.text(), /--read-only/);
    }
  }
  assert.deepEqual(await treeDigest(f.dir), before);
  assert.equal((await f.queue.get("d1")).state, "dead");
  const info = await f.json("/api/session");
  assert.equal(info.read_only, true);
  // Signing in and out still works.
  const login = await f.request("/api/login", { body: { token: TOKEN }, auth: "none" });
  assert.equal(login.status, 204);
});

Deno.test("every response carries the security headers and no CORS header, preflight included", async () => {
  await using f = await webFixture();
  await makeJob(f.store, f.clock, "completed", { id: "c" });
  await insertJob(f.store, f.clock, { id: "42" });
  const requests: [string, Parameters<WebFixture["request"]>[1]][] = [
    ...ROUTES.map((r): [string, Parameters<WebFixture["request"]>[1]] => [
      r.example.replace("/42/attempts", "/c/attempts"),
      r.method === "POST" ? { method: "POST", body: bodyFor(r) } : {},
    ]),
    ["/nowhere", {}],
    ["/api/jobs", { method: "OPTIONS", headers: { "access-control-request-method": "POST" } }],
    ["/api/dlq/retry", { method: "OPTIONS", origin: "http://evil.example" }],
    ["/api/jobs", { method: "DELETE" }],
    ["/", { host: "evil.example:1" }],
    ["/api/jobs", { auth: "none" }],
  ];
  for (const [path, options] of requests) {
    const response = await f.request(path, options);
    const what = `${options?.method ?? "GET"} ${path} (${response.status})`;
    if (path !== "/api/events") await response.body?.cancel();
    else await response.body?.cancel();
    const csp = response.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/, what);
    assert.match(csp, /script-src 'self'/, what);
    assert.match(csp, /style-src 'self'/, what);
    assert.match(csp, /frame-ancestors 'none'/, what);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, what);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", what);
    assert.equal(response.headers.get("referrer-policy"), "no-referrer", what);
    assert.equal(response.headers.get("cache-control"), "no-store", what);
    for (const [name] of response.headers) {
      assert.ok(!name.startsWith("access-control-"), `${what}: ${name}`);
    }
    if (options?.method === "OPTIONS" || options?.method === "DELETE") {
      assert.equal(response.status, 405, what);
    }
  }
});

Deno.test("GET and HEAD change nothing, on any route", async () => {
  await using f = await webFixture();
  await deadJob(f);
  await addSchedule(f);
  await makeJob(f.store, f.clock, "completed", { id: "42", command: "echo hi" });
  const before = await treeDigest(f.dir);
  for (const route of ROUTES.filter((r) => r.method === "GET" && r.path !== "/api/events")) {
    for (const method of ["GET", "HEAD"]) {
      const response = await f.request(route.example, { method });
      if (method === "HEAD") assert.equal(response.body, null, route.example);
      await response.body?.cancel();
      assert.ok(response.status < 400, `${method} ${route.example}: ${response.status}`);
    }
  }
  assert.deepEqual(await treeDigest(f.dir), before);
  assert.equal((await f.queue.get("d1")).state, "dead");
});

Deno.test("POST /api/login signs in with the token or a one-time code, setting an HttpOnly SameSite=Strict cookie", async () => {
  await using f = await webFixture();
  const wrong = await f.request("/api/login", { body: { token: "nope" }, auth: "none" });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get("set-cookie"), null);
  await wrong.body?.cancel();
  const ok = await f.request("/api/login", { body: { token: TOKEN }, auth: "none" });
  assert.equal(ok.status, 204);
  const cookie = ok.headers.get("set-cookie") ?? "";
  assert.match(
    cookie,
    /^queuectl_8642=s1\.[0-9a-z]+\.[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=604800$/,
  );
  assert.ok(!cookie.includes(TOKEN), "the cookie holds no token");
  const value = cookie.split(";")[0]!;
  assert.equal((await f.request("/api/session", { auth: { cookie: value } })).status, 200);
  // A one-time code works once.
  const code = f.auth.loginCode();
  const first = await f.request("/api/login", { body: { code }, auth: "none" });
  assert.equal(first.status, 204);
  const again = await f.request("/api/login", { body: { code }, auth: "none" });
  assert.equal(again.status, 401);
  const stale = f.auth.loginCode();
  f.clock.advance(121_000);
  assert.equal(
    (await f.request("/api/login", { body: { code: stale }, auth: "none" })).status,
    401,
  );
  // Login is refused from another origin (login CSRF), and needs JSON.
  const cross = await f.request("/api/login", {
    body: { token: TOKEN },
    auth: "none",
    origin: "http://evil.example",
  });
  assert.equal(cross.status, 403);
  const form = await f.request("/api/login", {
    body: `token=${TOKEN}`,
    type: "application/x-www-form-urlencoded",
    auth: "none",
  });
  assert.equal(form.status, 415);
  const out = await f.request("/api/logout", { body: {} });
  assert.match(out.headers.get("set-cookie") ?? "", /^queuectl_8642=; .*Max-Age=0$/);
  assert.ok(f.logs.some((l) => /refused a sign-in/.test(l)));
  assert.ok(f.logs.every((l) => !l.includes(TOKEN) && !l.includes(value)), "no secret in the log");
});

Deno.test("GET /api/jobs pages back by keyset, newest first, to the last job", async () => {
  await using f = await webFixture();
  for (let i = 0; i < 120; i++) {
    await insertJob(f.store, f.clock, { command: i % 2 ? `echo odd ${i}` : `echo even ${i}` });
  }
  const seen: string[] = [];
  let next: number | null = null;
  let pages = 0;
  do {
    const data = await f.json(`/api/jobs?limit=50${next === null ? "" : `&before=${next}`}`);
    const jobs = data.jobs as Record<string, unknown>[];
    assert.ok(jobs.length <= 50);
    for (const job of jobs) {
      assert.equal(job.env, undefined, "lists leave env out");
      seen.push(job.id as string);
    }
    assert.equal((data.counts as Record<string, number>).total, 120);
    assert.equal(data.scan_limit, SEARCH_SCAN_LIMIT);
    next = data.next_before as number | null;
    pages++;
  } while (next !== null);
  assert.equal(pages, 3);
  assert.deepEqual(seen, Array.from({ length: 120 }, (_, i) => String(120 - i)));
  // The search, in pages too.
  const odd = await f.json(`/api/jobs?q=${encodeURIComponent('cmd:"echo odd"')}&limit=25`);
  assert.deepEqual(
    (odd.jobs as { command: string }[]).map((j) => j.command),
    Array.from({ length: 25 }, (_, i) => `echo odd ${119 - 2 * i}`),
  );
  const rest = await f.json(`/api/jobs?q=cmd:odd&limit=50&before=${odd.next_before}`);
  assert.equal((rest.jobs as unknown[]).length, 35);
  assert.equal(rest.next_before, null);
  // Bad parameters are refused, saying what to give.
  for (
    const [query, message] of [
      ["limit=0", /Invalid limit "0": give a number from 1 to 200/],
      ["limit=201", /from 1 to 200/],
      ["before=abc", /Invalid before "abc"/],
      ["q=status:dead", /did you mean "state:"/],
      [`q=${"x".repeat(1001)}`, /too long/],
    ] as const
  ) {
    const data = await f.json(`/api/jobs?${query}`, { status: 400 });
    assert.match(data.error as string, message, query);
  }
});

Deno.test("GET /api/count counts from the counters for states, by a bounded count otherwise", async () => {
  await using f = await webFixture();
  for (let i = 0; i < 3; i++) await deadJob(f, `flaky-${i}`, `./flaky.sh ${i}`);
  await deadJob(f, "other", "./other.sh");
  const all = await f.json("/api/count?q=state:dead");
  assert.deepEqual([all.count, all.complete], [4, true]);
  const some = await f.json(`/api/count?q=${encodeURIComponent("state:dead cmd:flaky")}`);
  assert.deepEqual([some.count, some.complete], [3, true]);
});

Deno.test("POST /api/dlq/retry: selected ids all or none, at most BULK_CAP per request", async () => {
  await using f = await webFixture();
  await deadJob(f, "d1");
  await deadJob(f, "d2");
  await makeJob(f.store, f.clock, "completed", { id: "done" });
  const conflict = await f.json("/api/dlq/retry", { body: { ids: ["d1", "done"] }, status: 409 });
  assert.match(conflict.error as string, /Job "done" is not in the dead letter queue/);
  assert.equal((await f.queue.get("d1")).state, "dead", "all or none");
  const missing = await f.json("/api/dlq/retry", { body: { ids: ["nope"] }, status: 404 });
  assert.match(missing.error as string, /Job "nope" not found/);
  const tooMany = Array.from({ length: BULK_CAP + 1 }, (_, i) => `x${i}`);
  const capped = await f.json("/api/dlq/retry", { body: { ids: tooMany }, status: 413 });
  assert.match(capped.error as string, /At most 1000 jobs per request/);
  const bad = await f.json("/api/dlq/retry", { body: { ids: ["../x"] }, status: 400 });
  assert.match(bad.error as string, /Invalid job id/);
  const done = await f.json("/api/dlq/retry", { body: { ids: ["d1", "d2", "d1"] } });
  assert.deepEqual(done, { retried: ["d1", "d2"], next_before: null });
  assert.equal((await f.queue.get("d2")).state, "pending");
  assert.ok(
    f.logs.some((l) => / dashboard retried 2 dead jobs \(by id\)$/.test(l)),
    f.logs.join("\n"),
  );
});

Deno.test("POST /api/dlq/retry of all matching goes in steps of at most `limit`, never past the end", async () => {
  await using f = await webFixture();
  for (let i = 0; i < 25; i++) await deadJob(f, `flaky-${i}`, `./flaky.sh ${i}`);
  await deadJob(f, "keep", "./other.sh");
  const retried: string[] = [];
  let before: number | null = null;
  let steps = 0;
  for (;;) {
    const data = await f.json("/api/dlq/retry", {
      body: { query: "cmd:flaky", limit: 10, before },
    });
    const ids = data.retried as string[];
    assert.ok(ids.length <= 10);
    retried.push(...ids);
    steps++;
    before = data.next_before as number | null;
    if (before === null) break;
  }
  assert.equal(steps, 3);
  assert.equal(retried.length, 25);
  assert.equal(new Set(retried).size, 25);
  assert.equal((await f.queue.get("keep")).state, "dead");
  for (
    const [limit, status] of [[0, 400], [BULK_CAP + 1, 413], ["10", 400], [undefined, 400]] as const
  ) {
    const data = await f.json("/api/dlq/retry", {
      body: { query: "", ...(limit === undefined ? {} : { limit }) },
      status,
    });
    assert.match(data.error as string, /limit must be a number from 1 to 1000/);
  }
  const wrongState = await f.json("/api/dlq/retry", { body: { query: "state:pending", limit: 5 } });
  assert.deepEqual(wrongState.retried, []);
  assert.equal(
    (await f.json("/api/dlq/retry", { body: {}, status: 400 })).error,
    "Give ids, or a query with a limit",
  );
  assert.match(
    (await f.json("/api/dlq/retry", { body: "[1]", status: 400 })).error as string,
    /must be a JSON object/,
  );
});

Deno.test("the job page's API: every field, attempts, output as text, raw logs as text/plain attachments", async () => {
  await using f = await webFixture();
  const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(1)>\x1b[31mred\x1b[0m`;
  const job = await makeJob(f.store, f.clock, "processing", {
    id: "x:1",
    command: hostile,
    env: { SECRET: "s3cret" },
  });
  const bytes = new TextEncoder().encode(`${hostile}\n`);
  await f.store.attemptSaveOutput([{
    jobId: job.id,
    attempt: 1,
    workerId: job.workerId!,
    stdout: { head: bytes, tail: new Uint8Array(), total: bytes.length },
    stderr: { head: new Uint8Array(), tail: new Uint8Array(), total: 0 },
  }]);
  const data = await f.json("/api/jobs/x%3A1");
  assert.equal((data.job as Record<string, unknown>).command, hostile);
  assert.deepEqual((data.job as Record<string, unknown>).env, { SECRET: "s3cret" });
  assert.equal((data.attempts as unknown[]).length, 1);
  assert.equal(
    data.enqueue_command,
    `queuectl enqueue '{"command":"<script>alert(1)</script>\\"><img src=x onerror=alert(1)>\\u001b[31mred\\u001b[0m","max_retries":3,"cwd":"/tmp","env":{"SECRET":"s3cret"}}'`,
  );
  const list = await f.json("/api/jobs");
  assert.equal((list.jobs as Record<string, unknown>[])[0]!.env, undefined);
  const out = await f.json("/api/jobs/x%3A1/attempts/1/output");
  assert.equal(out.running, true);
  assert.deepEqual(out.stdout, {
    bytes: bytes.length,
    cut_bytes: 0,
    hidden_bytes: 0,
    head: `${hostile}\n`,
    tail: "",
  });
  const raw = await f.request("/api/jobs/x%3A1/attempts/1/raw/stdout");
  assert.equal(raw.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(
    raw.headers.get("content-disposition"),
    'attachment; filename="job-x_1-attempt-1.stdout.log"',
  );
  assert.deepEqual(new Uint8Array(await raw.arrayBuffer()), bytes);
  for (
    const [path, status, message] of [
      ["/api/jobs/x%3A1/attempts/2/output", 404, /has no attempt 2 \(it has 1 to 1\)/],
      ["/api/jobs/x%3A1/attempts/1/raw/stdin", 404, /No stream "stdin"/],
      ["/api/jobs/nope", 404, /Job "nope" not found/],
      ["/api/jobs/a%20b", 400, /Invalid job id "a b"/],
      ["/api/jobs/x%3A1/attempts/one/output", 400, /Invalid attempt "one"/],
    ] as const
  ) {
    const body = await f.json(path, { status });
    assert.match(body.error as string, message, path);
  }
});

Deno.test("the page's module builds the page from text only: no HTML parsing, no eval", () => {
  for (const [name, asset] of Object.entries(ASSETS)) {
    if (!name.endsWith(".js")) continue;
    for (
      const banned of [
        /\.innerHTML\b/,
        /\.outerHTML\b/,
        /insertAdjacentHTML/,
        /document\.write/,
        /\beval\(/,
        /new Function\b/,
        /DOMParser/,
        /createContextualFragment/,
        /setAttribute\(\s*["'](on|style|href|src)/,
      ]
    ) {
      assert.doesNotMatch(asset.body, banned, `${name} uses ${banned}`);
    }
  }
});

Deno.test("the assets are the client's files, embedded; the favicon is answered", async () => {
  await using f = await webFixture();
  const dir = new URL("../../lib/web/client/", import.meta.url);
  for (const [name, asset] of Object.entries(ASSETS)) {
    const response = await f.request(`/assets/${name}`, { auth: "none" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), asset.type);
    assert.equal(
      await response.text(),
      await Deno.readTextFile(new URL(name, dir)),
      `${name} is stale: deno task web`,
    );
  }
  assert.equal((await f.request("/favicon.ico", { auth: "none" })).status, 204);
  const missing = await f.request("/assets/nope.js", { auth: "none" });
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const page = await f.request("/jobs/42");
  const html = await page.text();
  assert.match(html, /<script type="module" src="\/assets\/app\.js"><\/script>/);
  assert.doesNotMatch(html, /<script>|<style|\sstyle=|\son[a-z]+=/, "no inline script or style");
});

/** Reads server-sent events from a response body. */
function events(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    async next(): Promise<{ event: string; data: string }> {
      for (;;) {
        const end = buffer.indexOf("\n\n");
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          if (event === undefined) continue; // a comment (keepalive) or retry alone
          return { event, data: /^data: (.*)$/m.exec(block)?.[1] ?? "" };
        }
        const { done, value } = await reader.read();
        if (done) throw new Error("the stream ended");
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

Deno.test("GET /api/events says when another process changed the queue, and after the dashboard's own actions", async () => {
  await using f = await webFixture();
  await deadJob(f);
  const response = await f.request("/api/events");
  assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const stream = events(response);
  try {
    const hello = await within(stream.next(), 5000, "hello");
    assert.equal(hello.event, "hello");
    assert.ok(JSON.parse(hello.data).as_of);
    // Another connection, as a `queuectl enqueue` in another process would be.
    const other = await openTestStore(f.path, f.clock);
    const t0 = performance.now();
    try {
      await insertJob(other, f.clock, { id: "new" });
      const change = await within(stream.next(), 1000, "a change within 1 s");
      assert.equal(change.event, "change");
      assert.ok(performance.now() - t0 < 1000);
    } finally {
      await other.close();
    }
    // This connection's own write: the handler wakes its streams itself.
    await f.json("/api/dlq/retry", { body: { ids: ["d1"] } });
    assert.equal((await within(stream.next(), 1000, "a change after a retry")).event, "change");
  } finally {
    await stream.cancel();
  }
  // close() ends every stream (the server's shutdown waits for them).
  const second = events(await f.request("/api/events"));
  assert.equal((await second.next()).event, "hello");
  f.handler.close();
  await within(
    (async () => {
      try {
        for (;;) await second.next();
      } catch { /* ended */ }
    })(),
    2000,
    "the stream ends on close()",
  );
});

Deno.test("the overview, workers and settings APIs print the CLI's shapes", async () => {
  await using f = await webFixture();
  await makeJob(f.store, f.clock, "completed", { id: "c" });
  const overview = await f.json("/api/overview");
  assert.equal((overview.counts as Record<string, number>).completed, 1);
  const metrics = overview.metrics as Record<string, unknown>;
  assert.equal((metrics.per_minute as unknown[]).length, 60);
  assert.deepEqual(overview.workers, []);
  const workers = await f.json("/api/workers");
  assert.deepEqual([workers.workers, workers.problems], [[], []]);
  await f.queue.configSet("max-retries", "5");
  const settings = await f.json("/api/settings");
  const retries = (settings.settings as Record<string, unknown>[]).find((s) =>
    s.key === "max-retries"
  );
  assert.deepEqual(retries, {
    key: "max-retries",
    value: 5,
    unit: "count",
    default: 3,
    set: true,
    text: "5",
    default_text: "3",
    help: "retries after the first attempt, for jobs enqueued without max_retries",
  });
  assert.equal(settings.location, f.path);
});
