/**
 * The dashboard: a `(Request) => Response` handler over the core API (`Queue`), mounted by
 * `queuectl dashboard` (lib/cli/commands/dashboard.ts). It never touches the store; what it prints
 * are the JSON shapes of lib/json.ts. Pages are one static shell and a small ES module
 * (lib/web/client/, embedded in lib/web/assets.ts) that reads `/api/…` and renders with
 * `textContent` only.
 *
 * Every request passes, in order: the Host check (DNS rebinding), the route table (unknown: 404,
 * wrong method: 405), authentication (the session cookie or `Authorization: Bearer`; pages
 * redirect to /login, the API answers 401), and for every route that changes something the origin
 * check (CSRF: 403), the read-only check (405) and a JSON body. GET never changes anything.
 *
 * @module
 */

import { EXIT, QueuectlError } from "../errors.ts";
import { idProblem, queueNameProblem } from "../job/id.ts";
import type { JobFilter } from "../job/filter.ts";
import {
  attemptJson,
  jobJson,
  jobLinkJson,
  jobSummaryJson,
  metricsJson,
  queueJson,
  scheduleSummaryJson,
  workerJson,
} from "../json.ts";
import type { Queue } from "../queue.ts";
import type { DueCursor } from "../store/store.ts";
import type { JobAction } from "../queue.ts";
import { ACTION_STATES, COUNT_SCAN_LIMIT, narrowForAction, SEARCH_SCAN_LIMIT } from "../queue.ts";
import { formatLogTime, iso } from "../time.ts";
import { problemLines } from "../worker/liveness.ts";
import { scheduleNameProblem } from "../schedule/spec.ts";
import { ASSETS } from "./assets.ts";
import type { Auth } from "./auth.ts";
import { eventStream, Kick } from "./events.ts";
import { parseQuery, QueryError } from "./query.ts";
import { hostAllowed, sameOrigin, secure } from "./security.ts";
import { SHELL_HTML } from "./shell.ts";
import { enqueueCommandLine, rawLog, streamView } from "./views.ts";
import { lazy } from "../lazy.ts";

/** Jobs one request may act on at most ("selected" and each step of "all matching"). */
export const BULK_CAP = 1000;
/** Jobs per page: default and most. */
export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 200;
/** The largest request body read. */
const MAX_BODY_BYTES = 256 * 1024;
const DAY_MS = 86_400_000;

export interface DashboardOptions {
  auth: Auth;
  /** Refuse every route that changes the queue (405), whatever the page shows. */
  readOnly: boolean;
  /** Names a Host header may carry (lib/web/security.ts `allowedHostNames`) … */
  hostNames: ReadonlySet<string>;
  /** … with this port. */
  port: number;
  version: string;
  /** One line per action, login and failure (never a token, a cookie or a job's output). */
  log?: (line: string) => void;
}

/** The handler, and `close()` to end its live streams (before the server shuts down). */
export interface Dashboard {
  (request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  close(): void;
}

interface RouteContext {
  request: Request;
  url: URL;
  params: Record<string, string>;
  queue: Queue;
  options: DashboardOptions;
  via: "bearer" | "cookie" | null;
  kick: Kick;
  shutdown: AbortSignal;
  remote: string;
}

/** Who may call a route, and what it changes. */
export interface Route {
  method: "GET" | "POST";
  /** Segments; `:name` takes one segment as a parameter. */
  path: string;
  /** `public`: the login page and static assets, which hold no data. */
  access: "public" | "session";
  /** `queue`: refused with --read-only. `session`: signs in or out. */
  changes: "queue" | "session" | "nothing";
  /** A path that matches, for tests and docs. */
  example: string;
  handle(ctx: RouteContext): Promise<Response> | Response;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly hint?: string) {
    super(message);
  }
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function problem(status: number, message: string, hint?: string): Response {
  return json(hint === undefined ? { error: message } : { error: message, hint }, status);
}

function page(): Response {
  return new Response(SHELL_HTML, { headers: { "content-type": "text/html; charset=utf-8" } });
}

/** A job id from the path, checked as enqueue checks ids. */
function jobId(ctx: RouteContext): string {
  const id = ctx.params.id!;
  const bad = idProblem(id);
  if (bad) throw new HttpError(400, `Invalid job id ${JSON.stringify(id)}: ${bad}`);
  return id;
}

function intParam(url: URL, name: string, min: number, max: number): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new HttpError(
      400,
      `Invalid ${name} ${JSON.stringify(text)}: give a number from ${min} to ${max}`,
    );
  }
  return Number(text);
}

/** The browser's time zone for local dates in a search, when it is one Intl knows. */
function timeZone(text: unknown): string | undefined {
  if (typeof text !== "string" || text === "" || text.length > 64) return undefined;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: text });
    return text;
  } catch {
    return undefined;
  }
}

async function filterOf(queue: Queue, q: unknown, tz: unknown): Promise<JobFilter> {
  if (q !== undefined && q !== null && typeof q !== "string") {
    throw new HttpError(400, "query must be text");
  }
  if (typeof q === "string" && q.length > 1000) throw new HttpError(400, "The search is too long");
  const zone = timeZone(tz);
  try {
    return parseQuery(q ?? "", { now: await queue.now(), ...(zone ? { timeZone: zone } : {}) });
  } catch (error) {
    if (error instanceof QueryError) throw new HttpError(400, error.message);
    throw error;
  }
}

/** The request's JSON object body: `application/json`, at most MAX_BODY_BYTES. */
async function body(request: Request): Promise<Record<string, unknown>> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, "Send the request as application/json");
  }
  const reader = request.body?.getReader();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new HttpError(413, "The request is too large");
    }
    chunks.push(new Uint8Array(value));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(await new Blob(chunks).arrayBuffer()));
  } catch {
    throw new HttpError(400, "The request is not valid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new HttpError(400, "The request must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** `ids` of a bulk request: a list of valid job ids, each once, at most BULK_CAP. */
function idsOf(input: Record<string, unknown>, verb: string): string[] {
  const ids = input.ids;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((i) => typeof i === "string")) {
    throw new HttpError(400, "ids must be a list of job ids");
  }
  const unique = [...new Set(ids as string[])];
  if (unique.length > BULK_CAP) {
    throw new HttpError(413, `At most ${BULK_CAP} jobs per request`, `${verb} them in parts`);
  }
  for (const id of unique) {
    const bad = idProblem(id);
    if (bad) throw new HttpError(400, `Invalid job id ${JSON.stringify(id)}: ${bad}`);
  }
  return unique;
}

/** One step of "all matching": the search, and `limit` and `before` of the keyset walk. */
async function stepOf(
  queue: Queue,
  input: Record<string, unknown>,
): Promise<{ filter: JobFilter; page: { limit: number; beforeSeq?: number } }> {
  const filter = await filterOf(queue, input.query, input.tz);
  const limit = input.limit;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > BULK_CAP) {
    throw new HttpError(
      limit === undefined || typeof limit !== "number" || limit <= BULK_CAP ? 400 : 413,
      `limit must be a number from 1 to ${BULK_CAP} (jobs per request)`,
    );
  }
  const before = input.before;
  if (
    before !== undefined && before !== null &&
    (typeof before !== "number" || !Number.isSafeInteger(before) || before < 1)
  ) {
    throw new HttpError(400, "before must be a position from next_before");
  }
  return { filter, page: { limit, ...(typeof before === "number" ? { beforeSeq: before } : {}) } };
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

/** What a cancel from the dashboard records as its reason when none is given. */
export const DASHBOARD_CANCEL_REASON = "cancelled from the dashboard";

function reasonOf(input: Record<string, unknown>): string {
  const reason = input.reason;
  if (reason === undefined || reason === null) return DASHBOARD_CANCEL_REASON;
  if (typeof reason !== "string" || reason.trim() === "" || reason.length > 500) {
    throw new HttpError(400, "reason must be text (1 to 500 characters)");
  }
  return reason;
}

/**
 * POST /api/jobs/cancel, /retry and /delete: on `ids` (all or none), or on one step of "all
 * matching" a `query` (at most `limit` jobs, from `before`), as /api/dlq/retry.
 */
function jobAction(action: JobAction): Route {
  const key = { cancel: "cancelled", retry: "retried", delete: "deleted" }[action];
  return {
    method: "POST",
    path: `/api/jobs/${action}`,
    access: "session",
    changes: "queue",
    example: `/api/jobs/${action}`,
    async handle(ctx) {
      const input = await body(ctx.request);
      const reason = action === "cancel" ? reasonOf(input) : undefined;
      let out: { ids: string[]; requested: string[]; nextBeforeSeq: number | null };
      let how: string;
      if (input.ids !== undefined) {
        const ids = idsOf(input, action);
        if (action === "cancel") {
          const { cancelled, requested } = await ctx.queue.cancel(ids, reason!);
          out = {
            ids: cancelled.map((j) => j.id),
            requested: requested.map((j) => j.id),
            nextBeforeSeq: null,
          };
        } else if (action === "retry") {
          out = {
            ids: (await ctx.queue.retry(ids)).map((j) => j.id),
            requested: [],
            nextBeforeSeq: null,
          };
        } else {
          out = { ids: await ctx.queue.delete(ids), requested: [], nextBeforeSeq: null };
        }
        how = "by id";
      } else if (input.query !== undefined) {
        const { filter, page } = await stepOf(ctx.queue, input);
        out = await ctx.queue.actOnMatching(
          action,
          filter,
          page,
          reason === undefined ? {} : { reason },
        );
        how = "all matching a search";
      } else {
        throw new HttpError(400, "Give ids, or a query with a limit");
      }
      if (out.ids.length + out.requested.length > 0) ctx.kick.wake();
      ctx.options.log?.(
        `${key} ${plural(out.ids.length, "job")}${
          out.requested.length
            ? ` and asked ${plural(out.requested.length, "running job")} to stop`
            : ""
        } (${how})`,
      );
      return json({
        [key]: out.ids,
        ...(action === "cancel" ? { requested: out.requested } : {}),
        next_before: out.nextBeforeSeq,
      });
    },
  };
}

/** A schedule name from the path, checked as `schedule add` checks names. */
function scheduleName(ctx: RouteContext): string {
  const name = ctx.params.name!;
  const bad = scheduleNameProblem(name);
  if (bad) throw new HttpError(400, `Invalid schedule name ${JSON.stringify(name)}: ${bad}`);
  return name;
}

/**
 * POST /api/schedules/:name/pause, /resume and /run ("run now": one occurrence enqueued at once,
 * paused or not). The body is an empty JSON object, as a form cannot send.
 */
function scheduleAction(action: "pause" | "resume" | "run"): Route {
  return {
    method: "POST",
    path: `/api/schedules/:name/${action}`,
    access: "session",
    changes: "queue",
    example: `/api/schedules/nightly/${action}`,
    async handle(ctx) {
      await body(ctx.request);
      const name = scheduleName(ctx);
      if (action === "run") {
        const { job, schedule } = await ctx.queue.scheduleRunNow(name);
        ctx.kick.wake();
        ctx.options.log?.(`ran schedule ${name} now: job ${job.id}`);
        return json({ job: jobSummaryJson(job), schedule: scheduleSummaryJson(schedule) });
      }
      const schedule = await ctx.queue.scheduleSetPaused(name, action === "pause");
      ctx.kick.wake();
      ctx.options.log?.(`${action === "pause" ? "paused" : "resumed"} schedule ${name}`);
      return json({ schedule: scheduleSummaryJson(schedule) });
    },
  };
}

/**
 * POST /api/queues/:name/pause and /resume: as `queuectl pause Q` / `resume Q` (running jobs go
 * on; a resume wakes idle workers). The body is an empty JSON object, as a form cannot send.
 */
function queueAction(action: "pause" | "resume"): Route {
  return {
    method: "POST",
    path: `/api/queues/:name/${action}`,
    access: "session",
    changes: "queue",
    example: `/api/queues/mail/${action}`,
    async handle(ctx) {
      await body(ctx.request);
      const name = ctx.params.name!;
      const bad = queueNameProblem(name);
      if (bad) throw new HttpError(400, `Invalid queue name ${JSON.stringify(name)}: ${bad}`);
      if (action === "pause") await ctx.queue.queuePause([name]);
      else await ctx.queue.queueResume([name]);
      ctx.kick.wake();
      ctx.options.log?.(`${action === "pause" ? "paused" : "resumed"} queue ${name}`);
      const { queues } = await ctx.queue.queueList();
      const queue = queues.find((q) => q.name === name);
      return json({ queue: queue ? queueJson(queue) : null });
    },
  };
}

async function asOf(queue: Queue): Promise<string | null> {
  return iso(await queue.now());
}

// ---------------------------------------------------------------------------------------------
// The routes. Pages are the shell; everything with data is under /api/.
// ---------------------------------------------------------------------------------------------

/** The jobs that wait for one that the job page lists at most (as `queuectl show`). */
const DEPENDENTS_SHOWN = 20;

const PAGES = [
  "/",
  "/jobs",
  "/jobs/:id",
  "/dlq",
  "/scheduled",
  "/schedules",
  "/workers",
  "/settings",
];

/** A place in the due order as a URL carries it: `<run_at epoch ms>.<seq>`. */
function dueCursorOf(url: URL): DueCursor | undefined {
  const text = url.searchParams.get("after");
  if (text === null || text === "") return undefined;
  const m = /^(\d{1,16})\.(\d{1,16})$/.exec(text);
  const cursor = m ? { runAt: Number(m[1]), seq: Number(m[2]) } : undefined;
  if (
    cursor === undefined || !Number.isSafeInteger(cursor.runAt) || !Number.isSafeInteger(cursor.seq)
  ) {
    throw new HttpError(
      400,
      `Invalid after ${JSON.stringify(text)}: give a position from next_after`,
    );
  }
  return cursor;
}

function dueCursorText(cursor: DueCursor | null): string | null {
  return cursor === null ? null : `${cursor.runAt}.${cursor.seq}`;
}

export const ROUTES: readonly Route[] = [
  ...PAGES.map((path): Route => ({
    method: "GET",
    path,
    access: "session",
    changes: "nothing",
    example: path.replace(":id", "42"),
    handle: page,
  })),
  {
    method: "GET",
    path: "/login",
    access: "public",
    changes: "nothing",
    example: "/login",
    handle: page,
  },
  {
    method: "GET",
    path: "/assets/:name",
    access: "public",
    changes: "nothing",
    example: "/assets/app.js",
    handle(ctx) {
      const asset = ASSETS[ctx.params.name!];
      if (asset === undefined) return new Response("not found\n", { status: 404 });
      return new Response(asset.body, { headers: { "content-type": asset.type } });
    },
  },
  {
    // Browsers ask for it unprompted; the pages name /assets/icon.svg instead.
    method: "GET",
    path: "/favicon.ico",
    access: "public",
    changes: "nothing",
    example: "/favicon.ico",
    handle: () => new Response(null, { status: 204 }),
  },
  {
    method: "POST",
    path: "/api/login",
    access: "public",
    changes: "session",
    example: "/api/login",
    async handle(ctx) {
      const { token, code } = await body(ctx.request);
      const auth = ctx.options.auth;
      const ok = (typeof token === "string" && auth.isToken(token)) ||
        (typeof code === "string" && auth.useLoginCode(code));
      if (!ok) {
        ctx.options.log?.(`refused a sign-in from ${ctx.remote}`);
        return problem(401, "That is not this dashboard's token (or the link was used already)");
      }
      ctx.options.log?.(`signed in a browser from ${ctx.remote}`);
      return new Response(null, {
        status: 204,
        headers: { "set-cookie": await auth.sessionCookie() },
      });
    },
  },
  {
    method: "POST",
    path: "/api/logout",
    access: "session",
    changes: "session",
    example: "/api/logout",
    handle: (ctx) =>
      new Response(null, {
        status: 204,
        headers: { "set-cookie": ctx.options.auth.clearCookie() },
      }),
  },
  {
    method: "GET",
    path: "/api/session",
    access: "session",
    changes: "nothing",
    example: "/api/session",
    async handle(ctx) {
      return json({
        as_of: await asOf(ctx.queue),
        version: ctx.options.version,
        location: ctx.queue.location,
        read_only: ctx.options.readOnly,
        bulk_cap: BULK_CAP,
        scan_limit: SEARCH_SCAN_LIMIT,
        count_scan_limit: COUNT_SCAN_LIMIT,
      });
    },
  },
  {
    method: "GET",
    path: "/api/overview",
    access: "session",
    changes: "nothing",
    example: "/api/overview",
    async handle(ctx) {
      const at = await asOf(ctx.queue);
      const [metrics, status, queues] = await Promise.all([
        ctx.queue.metrics(DAY_MS),
        ctx.queue.status(),
        ctx.queue.queueList(),
      ]);
      return json({
        as_of: at,
        counts: { ...status.counts, scheduled: status.scheduled.scheduled },
        next_scheduled_at: iso(status.scheduled.nextAt),
        workers: status.workers.map(workerJson),
        problems: problemLines(status.workers),
        metrics: metricsJson(metrics, true),
        queues: queues.queues.map(queueJson),
        paused_all: queues.pausedAll,
      });
    },
  },
  {
    method: "GET",
    path: "/api/jobs",
    access: "session",
    changes: "nothing",
    example: "/api/jobs?q=state:dead",
    async handle(ctx) {
      const { url, queue } = ctx;
      const at = await asOf(queue);
      const filter = await filterOf(queue, url.searchParams.get("q"), url.searchParams.get("tz"));
      const before = intParam(url, "before", 1, Number.MAX_SAFE_INTEGER);
      const limit = intParam(url, "limit", 1, PAGE_MAX) ?? PAGE_DEFAULT;
      const [found, counts] = await Promise.all([
        queue.search(filter, { limit, ...(before === undefined ? {} : { beforeSeq: before }) }),
        // Only the counters: `status()` would also count the scheduled jobs and judge workers.
        queue.counts(),
      ]);
      return json({
        as_of: at,
        counts,
        jobs: found.jobs.map(jobSummaryJson),
        next_before: found.nextBeforeSeq,
        truncated: found.truncated,
        scan_limit: SEARCH_SCAN_LIMIT,
      });
    },
  },
  {
    method: "GET",
    path: "/api/scheduled",
    access: "session",
    changes: "nothing",
    example: "/api/scheduled?q=queue:mail",
    async handle(ctx) {
      const { url, queue } = ctx;
      const now = await queue.now();
      const filter = await filterOf(queue, url.searchParams.get("q"), url.searchParams.get("tz"));
      const after = dueCursorOf(url);
      const limit = intParam(url, "limit", 1, PAGE_MAX) ?? PAGE_DEFAULT;
      const [found, scheduled, retrying] = await Promise.all([
        queue.scheduled(filter, { limit, ...(after === undefined ? {} : { after }) }),
        // Delayed: the overview's "scheduled" (from the ready index). Retrying: failed jobs
        // not due yet, through the failed state's index (as many rows as failed jobs, few).
        queue.countScheduled(),
        queue.countMatching({ states: ["failed"], dueAfter: now }),
      ]);
      return json({
        as_of: iso(now),
        counts: { delayed: scheduled.scheduled, retrying: retrying.count },
        next_due_at: iso(scheduled.nextAt),
        jobs: found.jobs.map(jobSummaryJson),
        next_after: dueCursorText(found.next),
        truncated: found.truncated,
        scan_limit: SEARCH_SCAN_LIMIT,
      });
    },
  },
  {
    method: "GET",
    path: "/api/count",
    access: "session",
    changes: "nothing",
    example: "/api/count?q=state:dead",
    async handle(ctx) {
      const { url, queue } = ctx;
      const at = await asOf(queue);
      let filter = await filterOf(queue, url.searchParams.get("q"), url.searchParams.get("tz"));
      // `for`: only the jobs an action would act on (the count its confirmation shows).
      const action = url.searchParams.get("for");
      if (action !== null) {
        if (!Object.hasOwn(ACTION_STATES, action)) {
          throw new HttpError(
            400,
            `Invalid for ${JSON.stringify(action)}: cancel, retry or delete`,
          );
        }
        filter = narrowForAction(filter, action as JobAction);
        if (filter.states!.length === 0) {
          return json({ as_of: at, count: 0, complete: true, scan_limit: COUNT_SCAN_LIMIT });
        }
      }
      const { count, complete } = await queue.countMatching(filter);
      return json({ as_of: at, count, complete, scan_limit: COUNT_SCAN_LIMIT });
    },
  },
  {
    method: "GET",
    path: "/api/jobs/:id",
    access: "session",
    changes: "nothing",
    example: "/api/jobs/42",
    async handle(ctx) {
      const id = jobId(ctx);
      const at = await asOf(ctx.queue);
      const job = await ctx.queue.get(id);
      const attempts = await ctx.queue.attempts(id);
      const links = await ctx.queue.dependencies(id, DEPENDENTS_SHOWN);
      return json({
        as_of: at,
        job: jobJson(job),
        attempts: attempts.map(attemptJson),
        waits_for: links.after.map(jobLinkJson),
        dependents: links.dependents.map(jobLinkJson),
        enqueue_command: enqueueCommandLine(job),
      });
    },
  },
  {
    method: "GET",
    path: "/api/jobs/:id/attempts/:n/output",
    access: "session",
    changes: "nothing",
    example: "/api/jobs/42/attempts/1/output",
    async handle(ctx) {
      const { id, attempt } = await attemptOf(ctx);
      const output = await ctx.queue.output(id, attempt.attempt);
      return json({
        as_of: await asOf(ctx.queue),
        job: id,
        attempt: attempt.attempt,
        running: attempt.outcome === null,
        stdout: streamView(output?.stdout),
        stderr: streamView(output?.stderr),
      });
    },
  },
  {
    method: "GET",
    path: "/api/jobs/:id/attempts/:n/raw/:stream",
    access: "session",
    changes: "nothing",
    example: "/api/jobs/42/attempts/1/raw/stdout",
    async handle(ctx) {
      const stream = ctx.params.stream;
      if (stream !== "stdout" && stream !== "stderr") {
        throw new HttpError(404, `No stream "${stream}": stdout or stderr`);
      }
      const { id, attempt } = await attemptOf(ctx);
      const output = await ctx.queue.output(id, attempt.attempt);
      const name = `job-${id.replaceAll(":", "_")}-attempt-${attempt.attempt}.${stream}.log`;
      return new Response(rawLog(output?.[stream], stream), {
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "content-disposition": `attachment; filename="${name}"`,
        },
      });
    },
  },
  {
    method: "POST",
    path: "/api/dlq/retry",
    access: "session",
    changes: "queue",
    example: "/api/dlq/retry",
    async handle(ctx) {
      const input = await body(ctx.request);
      if (input.ids !== undefined) {
        const jobs = await ctx.queue.dlqRetry(idsOf(input, "retry"));
        ctx.kick.wake();
        ctx.options.log?.(`retried ${plural(jobs.length, "dead job")} (by id)`);
        return json({ retried: jobs.map((j) => j.id), next_before: null });
      }
      if (input.query !== undefined) {
        const { filter, page } = await stepOf(ctx.queue, input);
        const { jobs, nextBeforeSeq } = await ctx.queue.dlqRetryMatching(filter, page);
        if (jobs.length > 0) ctx.kick.wake();
        ctx.options.log?.(`retried ${plural(jobs.length, "dead job")} (all matching a search)`);
        return json({ retried: jobs.map((j) => j.id), next_before: nextBeforeSeq });
      }
      throw new HttpError(400, "Give ids, or a query with a limit");
    },
  },
  jobAction("cancel"),
  jobAction("retry"),
  jobAction("delete"),
  {
    // The Scheduled page's "Run now": waiting jobs due at once (all or none), by id.
    method: "POST",
    path: "/api/jobs/run-now",
    access: "session",
    changes: "queue",
    example: "/api/jobs/run-now",
    async handle(ctx) {
      const input = await body(ctx.request);
      const jobs = await ctx.queue.runNow(idsOf(input, "run"));
      ctx.kick.wake();
      ctx.options.log?.(`made ${plural(jobs.length, "waiting job")} due now (by id)`);
      return json({ due: jobs.map((j) => j.id) });
    },
  },
  queueAction("pause"),
  queueAction("resume"),
  {
    method: "GET",
    path: "/api/schedules",
    access: "session",
    changes: "nothing",
    example: "/api/schedules",
    async handle(ctx) {
      const at = await asOf(ctx.queue);
      const schedules = await ctx.queue.scheduleList();
      return json({ as_of: at, schedules: schedules.map(scheduleSummaryJson) });
    },
  },
  scheduleAction("pause"),
  scheduleAction("resume"),
  scheduleAction("run"),
  {
    method: "GET",
    path: "/api/workers",
    access: "session",
    changes: "nothing",
    example: "/api/workers",
    async handle(ctx) {
      const at = await asOf(ctx.queue);
      const workers = await ctx.queue.workers();
      return json({ as_of: at, workers: workers.map(workerJson), problems: problemLines(workers) });
    },
  },
  {
    method: "GET",
    path: "/api/settings",
    access: "session",
    changes: "nothing",
    example: "/api/settings",
    async handle(ctx) {
      const at = await asOf(ctx.queue);
      const [overrides, config] = await Promise.all([
        ctx.queue.configOverrides(),
        lazy<typeof import("../config.ts")>(import.meta.url, "../config.ts"),
      ]);
      const settings = Object.entries(config.CONFIG_KEYS).map(([key, definition]) => {
        const value = overrides[key] ?? definition.default;
        return {
          key,
          ...config.configEntryJson(key, value, key in overrides),
          text: config.formatConfigValue(key, value),
          default_text: config.formatConfigValue(key, definition.default),
          help: definition.help,
        };
      });
      // Settings are shown, not changed here: `queuectl config set` changes them.
      return json({ as_of: at, location: ctx.queue.location, settings });
    },
  },
  {
    method: "GET",
    path: "/api/events",
    access: "session",
    changes: "nothing",
    example: "/api/events",
    handle(ctx) {
      const signal = AbortSignal.any([ctx.request.signal, ctx.shutdown]);
      return new Response(eventStream(ctx.queue, { signal, kick: ctx.kick }), {
        headers: { "content-type": "text/event-stream; charset=utf-8" },
      });
    },
  },
];

async function attemptOf(ctx: RouteContext) {
  const id = jobId(ctx);
  const n = ctx.params.n!;
  if (!/^\d{1,9}$/.test(n)) throw new HttpError(400, `Invalid attempt ${JSON.stringify(n)}`);
  const attempts = await ctx.queue.attempts(id);
  const attempt = attempts.find((a) => a.attempt === Number(n));
  if (attempt === undefined) {
    throw new HttpError(
      404,
      `Job "${id}" has no attempt ${n}` +
        (attempts.length ? ` (it has 1 to ${attempts.length})` : " (it has not run yet)"),
    );
  }
  return { id, attempt };
}

/** The route for a path, with its parameters; `methods` lists what other methods would match. */
function match(path: string): { routes: { route: Route; params: Record<string, string> }[] } {
  const segments = path.split("/").slice(1);
  const routes: { route: Route; params: Record<string, string> }[] = [];
  for (const route of ROUTES) {
    const pattern = route.path.split("/").slice(1);
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      const want = pattern[i]!;
      const have = segments[i]!;
      if (want.startsWith(":")) {
        try {
          params[want.slice(1)] = decodeURIComponent(have);
        } catch {
          ok = false;
        }
        ok &&= have !== "";
      } else ok = want === have;
    }
    if (ok) routes.push({ route, params });
  }
  // A literal segment wins over a parameter: /jobs/... pages never shadow /assets/....
  return { routes };
}

/** HTTP status and message for an error from the core. */
function errorResponse(error: unknown, log: ((line: string) => void) | undefined): Response {
  if (error instanceof HttpError) return problem(error.status, error.message, error.hint);
  if (error instanceof QueuectlError) {
    const status = error.exitCode === EXIT.notFound
      ? 404
      : error.exitCode === EXIT.conflict
      ? 409
      : error.exitCode === EXIT.usage
      ? 400
      : error.exitCode === EXIT.busy
      ? 503
      : 500;
    if (status >= 500) log?.(`error: ${error.message}`);
    return problem(status, error.message, error.hint);
  }
  log?.(`internal error: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
  return problem(500, "Internal error (the dashboard's log says more)");
}

/** Builds the handler. */
export function createHandler(queue: Queue, options: DashboardOptions): Dashboard {
  const kick = new Kick();
  const shutdown = new AbortController();
  const log = options.log === undefined
    ? undefined
    : (line: string) => options.log!(`${formatLogTime(queue.clock.now())} dashboard ${line}`);
  const withLog = { ...options, ...(log === undefined ? {} : { log }) };

  async function respond(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> {
    const host = request.headers.get("host");
    if (!hostAllowed(host, options.hostNames, options.port)) {
      log?.(`refused a request for host ${JSON.stringify((host ?? "").slice(0, 100))}`);
      return new Response("This server does not answer for that host name.\n", {
        status: 403,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    const url = new URL(request.url);
    const method = request.method === "HEAD" ? "GET" : request.method;
    const { routes } = match(url.pathname);
    if (routes.length === 0) return new Response("not found\n", { status: 404 });
    // Literal segments win (e.g. /api/count is not /api/jobs/:id).
    const found = routes.find((r) => r.route.method === method);
    if (found === undefined) {
      const allow: string[] = [...new Set(routes.map((r) => r.route.method))];
      if (allow.includes("GET")) allow.push("HEAD");
      return new Response(`${request.method} is not allowed here\n`, {
        status: 405,
        headers: { allow: allow.join(", ") },
      });
    }
    const { route, params } = found;
    const via = await options.auth.check(request);
    if (route.access === "session" && via === null) {
      if (route.path.startsWith("/api/")) {
        return problem(401, "Sign in first: open the link `queuectl dashboard` printed");
      }
      const next = url.pathname + url.search;
      return new Response(null, {
        status: 303,
        headers: { location: `/login?next=${encodeURIComponent(next)}` },
      });
    }
    if (route.changes !== "nothing") {
      if (!sameOrigin(request, host!, via)) {
        log?.(`refused a cross-site ${request.method} ${url.pathname}`);
        return problem(403, "Refused: the request does not come from the dashboard's own pages");
      }
      if (route.changes === "queue" && options.readOnly) {
        return new Response("The dashboard runs with --read-only: nothing can be changed.\n", {
          status: 405,
          headers: { allow: "", "content-type": "text/plain; charset=utf-8" },
        });
      }
    }
    const remote = info?.remoteAddr.transport === "tcp"
      ? `${info.remoteAddr.hostname}`
      : "a client";
    try {
      return await route.handle({
        request,
        url,
        params,
        queue,
        options: withLog,
        via,
        kick,
        shutdown: shutdown.signal,
        remote,
      });
    } catch (error) {
      return errorResponse(error, log);
    }
  }

  const handler = async (request: Request, info?: Deno.ServeHandlerInfo) => {
    const response = secure(await respond(request, info));
    if (request.method === "HEAD" && response.body !== null) {
      await response.body.cancel();
      return new Response(null, { status: response.status, headers: response.headers });
    }
    return response;
  };
  return Object.assign(handler, { close: () => shutdown.abort() });
}
