/**
 * The dashboard's handler over a real queue (a temporary SQLite file, a fake clock), called with
 * real `Request`s in process: every check the server makes sees exactly the headers a test sets.
 *
 * @module
 */

import type { FakeClock } from "../../lib/clock.ts";
import { Queue } from "../../lib/queue.ts";
import type { SqliteStore } from "../../lib/store/sqlite/store.ts";
import type { NewSchedule } from "../../lib/store/store.ts";
import { Auth } from "../../lib/web/auth.ts";
import type { Dashboard } from "../../lib/web/handler.ts";
import { createHandler } from "../../lib/web/handler.ts";
import { allowedHostNames } from "../../lib/web/security.ts";
import { storeFixture, T0 } from "../helpers/temp.ts";

/** The port the handler believes it listens on (nothing listens: requests are calls). */
export const PORT = 8642;
export const ORIGIN = `http://127.0.0.1:${PORT}`;
export const TOKEN = "0123456789abcdef0123456789abcdef-test-token";

export interface RequestOptions {
  method?: string;
  /** A JSON body (sent as application/json unless `type` says otherwise). */
  body?: unknown;
  type?: string;
  /** How to authenticate: the session cookie (default), the bearer token, or not at all. */
  auth?: "cookie" | "bearer" | "none" | { cookie: string } | { bearer: string };
  /** The Origin header; default: the dashboard's own on POST, none on GET. null: none. */
  origin?: string | null;
  /** The Host header; default: 127.0.0.1:PORT. null: none. */
  host?: string | null;
  headers?: Record<string, string>;
}

export interface WebFixture extends AsyncDisposable {
  readonly store: SqliteStore;
  readonly clock: FakeClock;
  readonly queue: Queue;
  readonly path: string;
  readonly dir: string;
  readonly handler: Dashboard;
  readonly auth: Auth;
  /** What the handler logged. */
  readonly logs: string[];
  /** A valid session cookie (`name=value`). */
  readonly cookie: string;
  request(path: string, options?: RequestOptions): Promise<Response>;
  /** `request()`, then the JSON body (asserting the status). */
  json(
    path: string,
    options?: RequestOptions & { status?: number },
  ): Promise<Record<string, unknown>>;
}

export async function webFixture(options: { readOnly?: boolean } = {}): Promise<WebFixture> {
  const f = await storeFixture();
  const queue = new Queue(f.store, { clock: f.clock });
  const logs: string[] = [];
  const auth = new Auth(TOKEN, { clock: f.clock, cookieName: `queuectl_${PORT}` });
  const handler = createHandler(queue, {
    auth,
    readOnly: options.readOnly ?? false,
    hostNames: allowedHostNames("127.0.0.1"),
    port: PORT,
    version: "test",
    log: (line) => logs.push(line),
  });
  const session = await auth.session();
  const cookie = `${auth.cookieName}=${session}`;
  const request = (path: string, o: RequestOptions = {}) => {
    const method = o.method ?? (o.body === undefined ? "GET" : "POST");
    const headers: Record<string, string> = { ...o.headers };
    const host = o.host === undefined ? `127.0.0.1:${PORT}` : o.host;
    if (host !== null) headers.host = host;
    const origin = o.origin === undefined ? (method === "GET" ? null : ORIGIN) : o.origin;
    if (origin !== null) headers.origin = origin;
    const how = o.auth ?? "cookie";
    if (how === "cookie") headers.cookie = cookie;
    else if (how === "bearer") headers.authorization = `Bearer ${TOKEN}`;
    else if (typeof how === "object" && "cookie" in how) headers.cookie = how.cookie;
    else if (typeof how === "object") headers.authorization = `Bearer ${how.bearer}`;
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
      headers["content-type"] = o.type ?? "application/json";
    }
    return handler(
      new Request(`${ORIGIN}${path}`, { method, headers, ...(body === undefined ? {} : { body }) }),
    );
  };
  return {
    store: f.store,
    clock: f.clock,
    queue,
    path: f.path,
    dir: f.dir,
    handler,
    auth,
    logs,
    cookie,
    request,
    async json(path, o = {}) {
      const response = await request(path, o);
      const text = await response.text();
      const want = o.status ?? 200;
      if (response.status !== want) {
        throw new Error(
          `${o.method ?? "GET"} ${path}: ${response.status}, wanted ${want}: ${text}`,
        );
      }
      return JSON.parse(text);
    },
    async [Symbol.asyncDispose]() {
      handler.close();
      await f[Symbol.asyncDispose]();
    },
  };
}

/** Adds schedule "nightly" (the route table's example): hourly from T0, a secret in its env. */
export async function addSchedule(
  f: Pick<WebFixture, "store">,
  overrides: Partial<NewSchedule> = {},
): Promise<void> {
  await f.store.scheduleAdd({
    schedule: {
      name: "nightly",
      spec: { kind: "every", everyMs: 3_600_000 },
      template: '{"command":"echo nightly","cwd":"/tmp","env":{"TOKEN":"s3cret"}}',
      anchor: T0,
      nextAt: T0 + 3_600_000,
      ...overrides,
    },
  });
}
