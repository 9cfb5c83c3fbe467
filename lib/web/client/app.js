// The queuectl dashboard in the browser: a router over a few pages, each rendered from the JSON of
// /api/… (the shapes of `queuectl … --json`), and live updates from /api/events. Served from
// lib/web/assets.ts, which `deno task web` builds from this directory.

import { ago, appendOutput, bytes, count, duration, fill, h, svg, timeEl } from "./dom.js";
import { perMinuteChart } from "./chart.js";

const STATES = ["pending", "processing", "completed", "failed", "dead", "cancelled"];

/**
 * The job actions: what each is called, where it is sent, the key of its answer, and the states
 * it applies to (the server's ACTION_STATES in lib/queue.ts).
 */
const ACTIONS = {
  cancel: {
    verb: "Cancel",
    done: "Cancelled",
    path: "/api/jobs/cancel",
    key: "cancelled",
    states: ["pending", "failed", "processing"],
    detail: "Waiting jobs end cancelled and never run; running ones are stopped by their worker.",
  },
  retry: {
    verb: "Retry",
    done: "Retried",
    path: "/api/jobs/retry",
    key: "retried",
    states: ["dead", "cancelled"],
    detail: "They go back to pending with a fresh retry budget.",
  },
  delete: {
    verb: "Delete",
    done: "Deleted",
    path: "/api/jobs/delete",
    key: "deleted",
    states: ["completed", "dead", "cancelled"],
    detail: "They are gone for good, with their attempts and output.",
  },
};
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

// ---------------------------------------------------------------------------------------------
// Talking to the server
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status, hint) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

/** A signed-out request ends in the login page; nothing else on the page goes on. */
class SignedOut extends Error {}

/**
 * A page's data: fetched while the session is (start() asks for both at once), returned once
 * both are there, since rendering needs the session (read-only, caps).
 */
async function load(path) {
  const [data] = await Promise.all([api(path), app.sessionReady]);
  return data;
}

async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && location.pathname !== "/login") {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new SignedOut();
  }
  const type = response.headers.get("content-type") ?? "";
  const data = response.status === 204
    ? {}
    : type.includes("json")
    ? await response.json()
    : { error: (await response.text()).trim() };
  if (!response.ok) {
    throw new ApiError(data.error ?? response.statusText, response.status, data.hint);
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// The frame: header, navigation, "as of", theme
// ---------------------------------------------------------------------------------------------

const app = {
  session: null,
  /** Resolves when `session` is set. */
  sessionReady: null,
  view: null,
  source: null,
  asOf: null,
  live: "connecting",
};

const asOfEl = h("span", { class: "asof", id: "asof" });
const liveEl = h("span", { class: "live", id: "live" });
const main = h("main", { id: "main" });
const readOnlyEl = h("span", { class: "badge ro", hidden: true }, "read-only");

function setAsOf(iso) {
  if (!iso) return;
  app.asOf = iso;
  fill(asOfEl, "as of ", timeEl(iso));
}

function setLive(state) {
  app.live = state;
  liveEl.dataset.state = state;
  liveEl.title = {
    live: "changes appear as they happen",
    paused: "paused while the tab is hidden",
    connecting: "connecting…",
    offline: "no connection to the dashboard; retrying",
  }[state];
  fill(liveEl, state);
}

const THEMES = ["auto", "dark", "light"];

function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  themeButton.textContent = `theme: ${theme}`;
}

const themeButton = h("button", {
  type: "button",
  class: "theme",
  id: "theme",
  title: "light, dark, or as the system says",
  on: {
    click() {
      const now = localStorage.getItem("queuectl-theme") ?? "auto";
      const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length];
      if (next === "auto") localStorage.removeItem("queuectl-theme");
      else localStorage.setItem("queuectl-theme", next);
      applyTheme(next);
    },
  },
});

const NAV = [
  ["/", "Overview"],
  ["/jobs", "Jobs"],
  ["/dlq", "Dead letters"],
  ["/scheduled", "Scheduled"],
  ["/schedules", "Recurring"],
  ["/workers", "Workers"],
  ["/settings", "Settings"],
];

/**
 * The brand mark, drawn in the page (icon.svg's shapes): an <img> of the SVG file costs a request
 * and a separate SVG document per page load, about 5 ms of the first render.
 */
function logo() {
  return svg(
    "svg",
    { viewBox: "0 0 32 32", "aria-hidden": "true", class: "logo" },
    svg("rect", { width: 32, height: 32, rx: 7, class: "logo-bg" }),
    svg("rect", { x: 7, y: 8, width: 18, height: 4, rx: 2, class: "logo-1" }),
    svg("rect", { x: 7, y: 14, width: 13, height: 4, rx: 2, class: "logo-2" }),
    svg("rect", { x: 7, y: 20, width: 8, height: 4, rx: 2, class: "logo-3" }),
  );
}

function header() {
  const links = NAV.map(([path, label]) => h("a", { href: path, "data-nav": path }, label));
  const signOut = h("button", {
    type: "button",
    class: "link",
    on: {
      async click() {
        await api("/api/logout", { method: "POST", body: {} }).catch(() => {});
        location.assign("/login");
      },
    },
  }, "sign out");
  return h(
    "header",
    { class: "top" },
    h(
      "a",
      { href: "/", class: "brand" },
      logo(),
      "queuectl",
    ),
    h("nav", {}, links),
    h("div", { class: "status" }, readOnlyEl, asOfEl, liveEl, themeButton, signOut),
  );
}

function markNav() {
  for (const a of document.querySelectorAll("nav a")) {
    const path = a.dataset.nav;
    const here = location.pathname;
    const on = path === "/" ? here === "/" : here === path || here.startsWith(`${path}/`);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function badge(state) {
  return h("span", { class: `badge state-${state}` }, state);
}

function errorBox(error) {
  return h(
    "div",
    { class: "error", role: "alert" },
    error.message,
    error.hint ? h("div", { class: "hint" }, error.hint) : null,
  );
}

function note(...text) {
  return h("p", { class: "note" }, ...text);
}

function jobLink(id) {
  return h("a", { href: `/jobs/${encodeURIComponent(id)}`, class: "id" }, id);
}

function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

// ---------------------------------------------------------------------------------------------
// Navigation without reloads: links and forms push URLs; back and forward re-render them.
// ---------------------------------------------------------------------------------------------

function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (event) => {
  const a = event.target.closest?.("a");
  if (!a || a.hasAttribute("download") || a.target || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
    return;
  }
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.preventDefault();
  if (url.href !== location.href) navigate(url.pathname + url.search);
});

addEventListener("popstate", () => route());

// "/" puts the cursor in the page's search box (as on GitHub), unless one is typing already.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName ?? "")) return;
  const search = main.querySelector('input[type="search"]');
  if (!search) return;
  event.preventDefault();
  search.focus();
  search.select();
});

// ---------------------------------------------------------------------------------------------
// Live updates: one EventSource while the tab is visible; none while it is hidden.
// ---------------------------------------------------------------------------------------------

let refreshing = false;
let again = false;

async function refresh() {
  if (!app.view?.refresh) return;
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      const view = app.view;
      try {
        await view.refresh();
      } catch (error) {
        if (error instanceof SignedOut) return;
        if (view === app.view) view.failed?.(error);
      }
    } while (again);
  } finally {
    refreshing = false;
  }
}

function connect() {
  if (app.source || document.hidden || !app.session) return;
  setLive("connecting");
  const source = new EventSource("/api/events");
  source.addEventListener("hello", () => setLive("live"));
  source.addEventListener("change", () => refresh());
  source.addEventListener("open", () => setLive("live"));
  source.addEventListener("error", () => {
    setLive("offline");
    // A closed source (the session ended, the server is gone) is not retried by the browser.
    if (source.readyState === EventSource.CLOSED) {
      app.source = null;
      setTimeout(() => {
        connect();
        refresh();
      }, 3000);
    }
  });
  app.source = source;
}

function disconnect() {
  app.source?.close();
  app.source = null;
  setLive("paused");
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) disconnect();
  else {
    connect();
    refresh();
  }
});

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

/**
 * The queues (`queuectl queue list`): counts per state, paused or active, the concurrency limit,
 * and Pause / Resume (`queuectl pause Q` / `resume Q`) unless read-only.
 */
function queueTable(list, pausedAll, result) {
  const readOnly = app.session.read_only;
  const say = (text, cls) => fill(result, text).setAttribute("class", `result ${cls}`);
  const button = (queue, action, label) =>
    h("button", {
      type: "button",
      "data-action": action,
      "data-queue": queue.name,
      "aria-label": `${label} queue ${queue.name}`,
      on: {
        async click(event) {
          event.target.disabled = true; // one click, one request
          say("", "");
          try {
            await api(`/api/queues/${encodeURIComponent(queue.name)}/${action}`, {
              method: "POST",
              body: {},
            });
            say(`${action === "pause" ? "Paused" : "Resumed"} queue ${queue.name}.`, "ok");
          } catch (e) {
            if (!(e instanceof SignedOut)) say(e.message, "bad");
          } finally {
            await refresh();
          }
        },
      },
    }, label);
  const headings = ["Queue", "Status", "Limit", ...STATES];
  if (!readOnly) headings.push("Actions");
  return [
    pausedAll
      ? note(
        "Every queue is paused, and queues created from now on start paused (",
        h("code", {}, "queuectl resume"),
        " resumes them all).",
      )
      : null,
    table(
      headings,
      list.map((queue) => {
        const cells = [
          h(
            "a",
            { href: `/jobs?q=${encodeURIComponent(`queue:${queue.name}`)}`, class: "id" },
            queue.name,
          ),
          queue.paused
            ? h("span", { class: "badge state-paused" }, "paused")
            : h("span", { class: "badge state-active" }, "active"),
          queue.concurrency === 0 ? h("span", { class: "muted" }, "-") : String(queue.concurrency),
          ...STATES.map((state) => count(queue.counts[state] ?? 0)),
        ];
        if (!readOnly) {
          cells.push(
            queue.paused ? button(queue, "resume", "Resume") : button(queue, "pause", "Pause"),
          );
        }
        return cells;
      }),
      { rowClass: (i) => (list[i].paused ? "paused" : null) },
    ),
  ];
}

function overviewPage() {
  const cards = h("div", { class: "cards" });
  const chart = h("div", { class: "chart-box" });
  const figures = h("dl", { class: "figures" });
  const workers = h("div");
  const failing = h("div");
  const error = h("div");
  const queues = h("div", { id: "queues" });
  const queueResult = h("p", { class: "result", id: "queue-result", "aria-live": "polite" });
  fill(
    main,
    h("h1", {}, "Overview"),
    error,
    cards,
    section("Queues", queueResult, queues),
    section("Attempts per minute", chart),
    section("Figures (last 24 h)", figures),
    section("Workers", workers),
    section("Top failing commands", failing),
  );
  return {
    async refresh() {
      const data = await load("/api/overview");
      setAsOf(data.as_of);
      fill(error);
      const c = data.counts;
      const card = (state, label, n, extra) =>
        h(
          "a",
          {
            class: `card state-${state}`,
            href: state === "total" ? "/jobs" : `/jobs?q=state:${state}`,
          },
          h("span", { class: "n" }, count(n)),
          h("span", { class: "label" }, label),
          extra ? h("span", { class: "extra" }, extra) : null,
        );
      fill(
        cards,
        card(
          "pending",
          "pending",
          c.pending,
          c.scheduled > 0
            ? [
              `${count(c.pending - c.scheduled)} due, ${count(c.scheduled)} scheduled; next `,
              timeEl(data.next_scheduled_at),
            ]
            : null,
        ),
        card("processing", "processing", c.processing),
        card("completed", "completed", c.completed),
        card("failed", "failed, will retry", c.failed),
        card("dead", "dead", c.dead),
        card("cancelled", "cancelled", c.cancelled),
        card("total", "total", c.total),
      );
      fill(queues, queueTable(data.queues, data.paused_all, queueResult));
      const m = data.metrics;
      fill(chart, perMinuteChart(m.per_minute));
      const rate = (v) => v === null ? "-" : `${v < 10 ? v.toFixed(1) : Math.round(v)}/min`;
      const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
      const s = m.success_rate;
      fill(
        figures,
        row(
          "Success",
          s.ratio === null
            ? "- (no attempts finished)"
            : `${(100 * s.ratio).toFixed(1)}% (${count(s.succeeded_attempts)} of ${
              count(s.finished_attempts)
            } attempts)`,
        ),
        row(
          "Throughput",
          `${rate(m.throughput.last_1m)} (1 min) · ${rate(m.throughput.last_15m)} (15 min) · ${
            rate(m.throughput.last_60m)
          } (1 h)`,
        ),
        row(
          "Run time",
          `p50 ${duration(m.run_time.p50)} · p95 ${duration(m.run_time.p95)} · max ${
            duration(m.run_time.max)
          }`,
        ),
        row("Queue wait", `p50 ${duration(m.queue_wait.p50)} · p95 ${duration(m.queue_wait.p95)}`),
        row(
          "Oldest waiting",
          m.oldest_due === null ? "nothing is waiting" : [
            "job ",
            jobLink(m.oldest_due.job),
            `, waiting ${duration(m.oldest_due.waiting_seconds * 1000)}`,
          ],
        ),
        row(
          "Retries",
          `${count(m.retries.jobs_retried)} jobs retried, ${
            count(m.retries.retry_attempts)
          } retry attempts`,
        ),
      );
      fill(workers, workerSummary(data.workers, data.problems, data.as_of));
      fill(
        failing,
        m.top_failing.length === 0 ? note("No failures in the last 24 hours.") : table(
          ["Failures", "Exit", "Last error", "Command"],
          m.top_failing.map((f) => [
            count(f.failures),
            f.last_exit_code ?? "-",
            f.last_error ?? "-",
            h("code", { class: "cmd" }, f.command),
          ]),
        ),
      );
    },
    failed(e) {
      fill(error, errorBox(e));
    },
  };
}

function workerSummary(list, problems, asOf) {
  if (list.length === 0) {
    return note(
      "No worker is registered. Start some with ",
      h("code", {}, "queuectl worker start --detach"),
      ".",
    );
  }
  const hosts = new Map();
  for (const w of list) hosts.set(w.host, [...(hosts.get(w.host) ?? []), w]);
  return [
    ...[...hosts].map(([host, ws]) => {
      const by = (state) => ws.filter((w) => w.state === state).length;
      return h(
        "div",
        { class: "host" },
        h(
          "h3",
          {},
          host,
          " ",
          h(
            "span",
            { class: "muted" },
            `${by("busy")} busy, ${by("idle")} idle${by("stale") ? `, ${by("stale")} stale` : ""}${
              by("gone") ? `, ${by("gone")} gone` : ""
            }`,
          ),
        ),
        table(
          ["Worker", "Pid", "State", "Job", "Done", "Failed", "Started", "Heartbeat"],
          ws.map((w) => [
            w.id,
            w.pid,
            badge(w.state),
            w.current_job === null ? "-" : jobLink(w.current_job),
            count(w.jobs_done),
            count(w.jobs_failed),
            timeEl(w.started_at),
            ago(w.heartbeat_at, asOf),
          ]),
        ),
      );
    }),
    problems.map((p) => h("p", { class: "warn" }, p)),
  ];
}

function table(headings, rows, { rowClass } = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, headings.map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        rows.map((cells, i) =>
          h(
            "tr",
            { class: rowClass?.(i) },
            cells.map((c, j) => h("td", { "data-label": headings[j] }, c)),
          )
        ),
      ),
    ),
  );
}

/**
 * A list page's URL: its search and where the page starts (`cursor`: `before` on the jobs and
 * DLQ pages, `after` on the Scheduled one), as the address bar shows them.
 */
function listUrl(base, q, cursor, start = null) {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if (start !== null) params.set(cursor, String(start));
  const search = params.toString();
  return search ? `${base}?${search}` : base;
}

/** The state qualifier of a search replaced by `state` (or removed for "all"). */
function withState(q, state) {
  const rest = q.split(/\s+/).filter((t) => t !== "" && !/^state:/i.test(t));
  return (state === null ? rest : [`state:${state}`, ...rest]).join(" ");
}

/** The single state a search is about, if it names exactly one. */
function stateOf(q) {
  const tokens = q.split(/\s+/).filter((t) => /^state:/i.test(t));
  if (tokens.length !== 1) return null;
  const states = tokens[0].slice(6).toLowerCase().split(",");
  return states.length === 1 ? states[0] : "";
}

const HELP = [
  ["state:dead,failed", "jobs in these states"],
  ["priority:8 · priority:>=8 · priority:7..10", "by priority"],
  ['cmd:backup · cmd:"make test" · bare words', "the command contains this text (case matters)"],
  ["id:nightly", "one job"],
  [
    "created:>2h · created:<7d · created:2026-11-01 · created:2026-11-01..2026-11-03",
    "enqueued then (dates in your time zone)",
  ],
  ["due:later · due:now", "waiting for a time (delayed, retry backoff) · its time has come"],
];

/** "3 jobs", "1 job". */
function nJobs(n) {
  return `${count(n)} job${n === 1 ? "" : "s"}`;
}

/**
 * The "N selected" button of a job action (ACTIONS) on a list page. `subject` is what its
 * confirmation says is acted on (null: no confirmation); `more` overrides any part of it.
 */
function onSelected(name, subject, more = {}) {
  const a = ACTIONS[name];
  return {
    id: `${name}-selected`,
    label: (n) => (n > 0 ? `${a.verb} ${n} selected` : `${a.verb} selected`),
    states: a.states,
    path: a.path,
    confirm: subject === null
      ? null
      : (n) => [`${a.verb} ${nJobs(n)}?`, subject, a.detail, `${a.verb} ${count(n)}`],
    said(out) {
      const asked = out.requested?.length ?? 0;
      return `${a.done} ${nJobs(out[a.key].length)}${
        asked ? `; ${count(asked)} running asked to stop` : ""
      }.`;
    },
    ...more,
  };
}

/**
 * The "all matching" button of a job action (ACTIONS) on a list page: `subject` is what its
 * confirmation says is acted on; `more` overrides any part of it.
 */
function onMatching(name, subject, more = {}) {
  const a = ACTIONS[name];
  return {
    id: `${name}-all`,
    label: `${a.verb}…`,
    all: name,
    path: a.path,
    /** The search sent with each step; the page's `query` unless told. */
    query: null,
    tooMany: (limit) =>
      `More than ${count(limit)} jobs would have to be looked at to count them: narrow the search.`,
    none: `No matching job can be ${a.done.toLowerCase()}.`,
    title: (n) => `${a.verb} ${nJobs(n)}?`,
    subject,
    ...more,
  };
}

/** Columns more than one list page shows, as `[heading, cell(job)]`. */
const COLUMNS = {
  id: ["Id", (job) => jobLink(job.id)],
  priority: ["Pri", (job) => job.priority],
  command: ["Command", (job) => h("code", { class: "cmd", title: job.command }, job.command)],
};

/**
 * A list of jobs, searchable, in keyset pages: the frame of the jobs, DLQ and Scheduled pages
 * (a search form, tabs with counts, an actions bar on the selected jobs or all that match, a
 * table, a pager, live refresh). `make(q)` gives what differs, for the search `q` in the URL:
 * - `path`, `cursor`: the page's URL and its page-start parameter (the API's too, whose answer
 *   gives the next page's start as `next_${cursor}`);
 * - `title`, `intro` (null or an element), `placeholder`, `help` (the search help or not);
 * - `tabs`: null, or `{ label, of(counts) }`, `of` giving `[state, label, n]` a tab;
 * - `source`, `sourceQuery`: the API list and the search it is asked for; `query`: the search
 *   the actions count and act on (the page's jobs);
 * - `columns`: `[heading, cell(job)]` a column, after the selection's checkbox;
 * - `empty`: `[text, code]` for an empty list without search (code null: none); `noMatch`;
 * - `pager`: `{ first: [label, id], further: label, next: [label, id] }`;
 * - `actions`: the actions bar, in order: a text, an onSelected() or an onMatching() button (or
 *   one like it: `{ id, title?, label(n), states?, path, confirm?(n), said(out) }`);
 * - `refreshed?(data, view)`: after each refresh.
 */
function listPage(make) {
  const url = new URL(location.href);
  const q = url.searchParams.get("q") ?? "";
  const page = make(q);
  const start = url.searchParams.get(page.cursor);
  const selected = new Set();
  const form = searchForm(
    q,
    page.placeholder,
    (text) => navigate(listUrl(page.path, text, page.cursor)),
  );
  const help = page.help
    ? h(
      "details",
      { class: "help" },
      h("summary", {}, "search help"),
      h("dl", {}, HELP.map(([k, v]) => [h("dt", {}, h("code", {}, k)), h("dd", {}, v)])),
      h(
        "p",
        {},
        "Qualifiers combine (all must hold). A page looks at a bounded number of jobs; when ",
        "that finds too few, the page says so and offers to search further back.",
      ),
    )
    : null;
  const tabs = page.tabs ? h("nav", { class: "tabs", "aria-label": page.tabs.label }) : null;
  const error = h("div");
  const actions = h("div", { class: "actions" });
  const list = h("div");
  const pager = h("div", { class: "pager" });
  fill(main, h("h1", {}, page.title), page.intro, form, help, tabs, error, actions, list, pager);

  let current = null;
  // The outcome of the last action, kept here: a live refresh redraws the action bar.
  let message = { text: "", cls: "" };
  // Selected jobs and the state each was shown in (an action sends the ones it applies to).
  const selectedState = new Map();
  const applicable = (states) =>
    states ? [...selected].filter((id) => states.includes(selectedState.get(id))) : [...selected];
  const updateActions = () => {
    if (app.session.read_only) {
      fill(
        actions,
        note("Read-only: actions are switched off (", h("code", {}, "--read-only"), ")."),
      );
      return;
    }
    const empty = current === null || current.jobs.length === 0;
    fill(
      actions,
      page.actions.map((b) => {
        if (typeof b === "string") return h("span", { class: "muted" }, b);
        if (b.all) {
          return h("button", {
            type: "button",
            id: b.id,
            disabled: empty,
            on: { click: () => actAll(b) },
          }, b.label);
        }
        const n = applicable(b.states).length;
        return h("button", {
          type: "button",
          id: b.id,
          title: b.title,
          disabled: n === 0,
          on: { click: () => actSelected(b) },
        }, b.label(n));
      }),
      h("span", { class: `result ${message.cls}`, id: "action-result" }, message.text),
    );
  };
  const result = (text, cls = "") => {
    message = { text, cls };
    updateActions();
  };

  // Each action starts by clearing the last one's outcome, so that an outcome on screen is always
  // this action's own (an old "Retried 1 job." once sat beside a new confirmation).
  async function actSelected(b) {
    result("");
    const ids = applicable(b.states);
    if (ids.length === 0) return;
    if (b.confirm) {
      const go = await confirmDialog(...b.confirm(ids.length));
      if (!go) return;
    }
    try {
      const out = await api(b.path, { method: "POST", body: { ids } });
      for (const id of ids) selected.delete(id);
      await refresh();
      result(b.said(out), "ok");
    } catch (e) {
      if (!(e instanceof SignedOut)) result(e.message, "bad");
    }
  }

  /** An action on every job that matches the search, in steps of at most bulk_cap. */
  async function actAll(b) {
    result("");
    const a = ACTIONS[b.all];
    let total;
    try {
      total = await api(
        `/api/count?q=${encodeURIComponent(page.query)}&tz=${
          encodeURIComponent(TIME_ZONE)
        }&for=${b.all}`,
      );
    } catch (e) {
      if (!(e instanceof SignedOut)) result(e.message, "bad");
      return;
    }
    if (!total.complete) {
      result(b.tooMany(total.scan_limit), "bad");
      return;
    }
    if (total.count === 0) {
      result(b.none, "bad");
      return;
    }
    const n = total.count;
    const go = await confirmDialog(
      b.title(n),
      b.subject,
      `${a.detail} ${count(app.session.bulk_cap)} per request.`,
      `${a.verb} ${count(n)}`,
    );
    if (!go) return;
    let done = 0;
    let asked = 0;
    let from = null;
    // Each request acts on at most bulk_cap jobs, walking back from where the last one stopped;
    // never more than the count confirmed, however many jobs came since.
    for (let round = 0; done + asked < n && round < 10_000; round++) {
      result(`${a.verb}… ${count(done + asked)} of ${count(n)}`);
      try {
        const out = await api(b.path, {
          method: "POST",
          body: {
            query: b.query ?? page.query,
            tz: TIME_ZONE,
            before: from,
            limit: Math.min(app.session.bulk_cap, n - done - asked),
          },
        });
        done += out[a.key].length;
        asked += out.requested?.length ?? 0;
        from = out.next_before;
        if (from === null) break;
      } catch (e) {
        if (!(e instanceof SignedOut)) {
          result(`Stopped after ${count(done + asked)}: ${e.message}`, "bad");
        }
        await refresh();
        return;
      }
    }
    selected.clear();
    await refresh();
    const gone = n - done - asked;
    result(
      `${a.done} ${nJobs(done)}${asked ? `; ${count(asked)} running asked to stop` : ""}${
        gone > 0 ? ` (${count(gone)} had changed meanwhile)` : ""
      }.`,
      "ok",
    );
  }

  const row = (job) => {
    const cells = [];
    if (!app.session.read_only) {
      if (selected.has(job.id)) selectedState.set(job.id, job.state);
      cells.push(h("input", {
        type: "checkbox",
        "aria-label": `select job ${job.id}`,
        checked: selected.has(job.id),
        on: {
          change(event) {
            if (event.target.checked) {
              selected.add(job.id);
              selectedState.set(job.id, job.state);
            } else selected.delete(job.id);
            updateActions();
          },
        },
      }));
    }
    cells.push(...page.columns.map(([, cell]) => cell(job)));
    return cells;
  };

  const view = {
    async refresh() {
      const params = new URLSearchParams({ q: page.sourceQuery, tz: TIME_ZONE });
      if (start) params.set(page.cursor, start);
      const data = await load(`${page.source}?${params}`);
      current = data;
      setAsOf(data.as_of);
      fill(error);
      if (tabs) {
        const active = stateOf(q);
        fill(
          tabs,
          page.tabs.of(data.counts).map(([state, label, n]) =>
            h(
              "a",
              {
                href: listUrl(page.path, withState(q, state), page.cursor),
                "aria-current": (state === null ? active === null : active === state)
                  ? "page"
                  : null,
              },
              label,
              " ",
              h("span", { class: "n" }, count(n)),
            )
          ),
        );
      }
      // Jobs acted on elsewhere leave the selection.
      for (const id of [...selected]) if (!data.jobs.some((j) => j.id === id)) selected.delete(id);
      const headings = page.columns.map(([heading]) => heading);
      if (!app.session.read_only) headings.unshift("");
      const fresh = q === "" && !start;
      fill(
        list,
        data.jobs.length === 0
          ? note(
            data.truncated
              ? "No match among the jobs looked at so far."
              : fresh
              ? page.empty[0]
              : page.noMatch,
            fresh && page.empty[1] !== null ? h("code", {}, page.empty[1]) : null,
          )
          : table(headings, data.jobs.map(row)),
      );
      const next = data[`next_${page.cursor}`];
      const link = ([label, id], to) =>
        h("a", { href: listUrl(page.path, q, page.cursor, to), class: "button", id }, label);
      fill(
        pager,
        start ? link(page.pager.first, null) : null,
        data.truncated
          ? h(
            "span",
            { class: "note" },
            `Looked at ${count(data.scan_limit)} jobs without filling the page. `,
            link([page.pager.further, "further"], next),
          )
          : next !== null
          ? link(page.pager.next, next)
          : null,
      );
      updateActions();
      page.refreshed?.(data, view);
    },
    failed(e) {
      fill(error, errorBox(e));
      fill(list);
      fill(pager);
    },
  };
  return view;
}

/** Jobs (`dead` false) and the dead letter queue (true): one list, searchable, in pages. */
function jobsPage({ dead }) {
  return listPage((q) => {
    const query = dead ? `state:dead ${q}`.trim() : q;
    const matching = q === "" ? "" : ` that matches “${q}”`;
    const all = (name) => {
      const a = ACTIONS[name];
      return onMatching(
        name,
        `Every job ${a.verb.toLowerCase()} applies to (${a.states.join(", ")})${matching}`,
      );
    };
    return {
      path: dead ? "/dlq" : "/jobs",
      cursor: "before",
      title: dead ? "Dead letter queue" : "Jobs",
      intro: dead
        ? note("Jobs that used up their retries. A retry gives them a fresh budget.")
        : null,
      placeholder: dead
        ? "search dead jobs: cmd:backup created:>1d"
        : "state:dead cmd:backup priority:>=8 created:>1h",
      help: true,
      tabs: dead ? null : {
        label: "states",
        of: (counts) => [[null, "All", counts.total], ...STATES.map((s) => [s, s, counts[s]])],
      },
      source: "/api/jobs",
      sourceQuery: query,
      query,
      columns: [
        COLUMNS.id,
        ["State", (job) => badge(job.state)],
        COLUMNS.priority,
        ["Tries", (job) => job.attempts],
        ["Created", (job) => timeEl(job.created_at)],
        [
          dead ? "Died" : "Due / finished",
          (job) => dead || job.finished_at ? timeEl(job.finished_at) : timeEl(job.run_at),
        ],
        COLUMNS.command,
        [
          "Last error",
          (job) =>
            job.last_error === null
              ? h("span", { class: "muted" }, "-")
              : h("span", { class: "err" }, job.last_error),
        ],
      ],
      empty: dead
        ? ["The dead letter queue is empty.", null]
        : ["No jobs yet. Enqueue one: ", "queuectl enqueue -c 'echo hello'"],
      noMatch: "No job matches.",
      pager: {
        first: ["⇤ Newest", "newest"],
        further: "Search further back →",
        next: ["Older →", "older"],
      },
      actions: dead
        ? [
          onSelected("retry", null, { path: "/api/dlq/retry" }),
          onMatching(
            "retry",
            q === "" ? "Every job in the dead letter queue" : `Every dead job${matching}`,
            {
              label: "Retry all matching…",
              path: "/api/dlq/retry",
              query: q,
              none: "No dead job matches.",
              title: (n) => `Retry ${count(n)} dead job${n === 1 ? "" : "s"}?`,
            },
          ),
        ]
        : [
          onSelected("cancel", "The selected waiting or running jobs."),
          onSelected("retry", null),
          onSelected("delete", "The selected finished jobs."),
          "all matching:",
          all("cancel"),
          all("retry"),
          all("delete"),
        ],
    };
  });
}

/** Why a job waits for its time: enqueued for later, or a retry waiting out its backoff. */
function dueReason(job) {
  if (job.state !== "failed") return "delayed";
  const retry = 1 + job.max_retries - job.attempts_left;
  return `retry ${retry} of ${job.max_retries} (backoff)`;
}

/** The search box of a list page: `q` in it, `search(text)` on submit. */
function searchForm(q, placeholder, search) {
  const input = h("input", {
    type: "search",
    name: "q",
    value: q,
    placeholder,
    "aria-label": "search",
    "aria-keyshortcuts": "/",
    title: "search (press / to get here)",
    autocomplete: "off",
    spellcheck: "false",
  });
  return h(
    "form",
    {
      class: "search",
      role: "search",
      on: {
        submit(event) {
          event.preventDefault();
          search(input.value.trim());
        },
      },
    },
    input,
    h("button", { type: "submit" }, "Search"),
  );
}

/**
 * Jobs waiting for a time, soonest first: delayed ones (`enqueue --delay / --run-at`) and retries
 * waiting out their backoff. The list is `due:later` plus the search; pages go forward in due
 * order. "Run now" makes them due at once; cancel ends them; delete does not apply (they have not
 * finished).
 */
function scheduledPage() {
  let timer = null;
  return listPage((q) => ({
    path: "/scheduled",
    cursor: "after",
    title: "Scheduled jobs",
    intro: note(
      "Jobs waiting for a time, soonest first: delayed ones (",
      h("code", {}, "enqueue --delay"),
      ", ",
      h("code", {}, "--run-at"),
      ") and retries waiting out their backoff. Jobs waiting for other jobs are on the ",
      h("a", { href: "/jobs?q=state:pending" }, "jobs page"),
      "; recurring ones on ",
      h("a", { href: "/schedules" }, "Recurring"),
      ". Times are in your time zone (UTC on hover).",
    ),
    placeholder: "queue:mail priority:>=8 cmd:backup state:failed",
    help: false,
    tabs: {
      label: "why",
      of: (counts) => [
        [null, "All", counts.delayed + counts.retrying],
        ["pending", "delayed", counts.delayed],
        ["failed", "retry backoff", counts.retrying],
      ],
    },
    source: "/api/scheduled",
    sourceQuery: q,
    // The search as the jobs page and the actions read it: the jobs that wait for a time.
    query: `due:later ${q}`.trim(),
    columns: [
      COLUMNS.id,
      [
        "Due",
        (job) =>
          h(
            "span",
            { class: "due" },
            timeEl(job.run_at),
            " ",
            h("span", { class: "muted" }, until(job.run_at)),
          ),
      ],
      [
        "Why",
        (job) =>
          h("span", { class: job.state === "failed" ? "reason retry" : "reason" }, dueReason(job)),
      ],
      ["Queue", (job) => job.queue],
      COLUMNS.priority,
      COLUMNS.command,
    ],
    empty: [
      "Nothing is scheduled. Enqueue a job for later: ",
      "queuectl enqueue --delay 10m -c 'echo later'",
    ],
    noMatch: "No scheduled job matches.",
    pager: {
      first: ["⇤ Soonest", "soonest"],
      further: "Search further →",
      next: ["Later →", "later"],
    },
    actions: [
      // No confirmation: nothing is lost, they only run sooner.
      {
        id: "run-now-selected",
        title: "make them due now: the next free worker takes them",
        label: (n) => (n > 0 ? `Run ${n} now` : "Run selected now"),
        states: null,
        path: "/api/jobs/run-now",
        confirm: null,
        said: (out) => `${nJobs(out.due.length)} due now: the next free worker takes them.`,
      },
      onSelected("cancel", "The selected scheduled jobs.", {
        said: (out) => `Cancelled ${nJobs(out.cancelled.length)}.`,
      }),
      onMatching(
        "cancel",
        q === ""
          ? "Every job waiting for a time"
          : `Every job waiting for a time that matches “${q}”`,
        {
          label: "Cancel all matching…",
          tooMany: (limit) =>
            `More than ${count(limit)} jobs would have to be looked at: narrow the search.`,
          none: "No scheduled job matches.",
        },
      ),
    ],
    /** A refresh when the soonest job on the page comes due (no change event says so). */
    refreshed(data, view) {
      clearTimeout(timer);
      const first = data.jobs[0];
      if (!first) return;
      const ms = Date.parse(first.run_at) - Date.parse(data.as_of);
      timer = setTimeout(() => {
        if (app.view === view && !document.hidden) refresh();
      }, Math.min(Math.max(ms, 0) + 250, 2_147_000_000));
    },
  }));
}

/** A modal question in the page (no window.confirm: it blocks the page and tests). */
function confirmDialog(title, subject, detail, yes) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", id: "confirm" },
      h("h2", {}, title),
      h("p", {}, subject),
      h("p", { class: "muted" }, detail),
      h(
        "form",
        { method: "dialog" },
        h("button", { value: "yes", id: "confirm-yes", class: "primary" }, yes),
        h("button", { value: "no", id: "confirm-no" }, "Cancel"),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function attemptsText(job) {
  if (job.state === "completed") return `${job.attempts} (completed on attempt ${job.attempts})`;
  if (job.state === "dead") return `${job.attempts} (1 + ${job.max_retries} retries, all failed)`;
  if (job.state === "cancelled") return `${job.attempts} (cancelled)`;
  return `${job.attempts} (${job.attempts_left} left of 1 + ${job.max_retries} retries)`;
}

function timeline(attempts) {
  const starts = attempts.map((a) => Date.parse(a.started_at));
  const ends = attempts.map((a) =>
    a.finished_at ? Date.parse(a.finished_at) : Date.parse(app.asOf)
  );
  const t0 = Math.min(...starts);
  const t1 = Math.max(...ends, t0 + 1);
  const width = 600;
  const x = (t) => ((t - t0) / (t1 - t0)) * width;
  return h(
    "figure",
    { class: "timeline" },
    svgStrip(attempts, starts, ends, x, width),
    h(
      "figcaption",
      {},
      h("span", {}, timeEl(attempts[0].started_at)),
      h("span", {}, duration(t1 - t0)),
      h("span", {}, attempts.at(-1).finished_at ? timeEl(attempts.at(-1).finished_at) : "running"),
    ),
  );
}

function svgStrip(attempts, starts, ends, x, width) {
  // One bar per attempt on a shared time axis; the gaps are the retry delays.
  return svg(
    "svg",
    {
      viewBox: `0 0 ${width} 16`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": "attempts over time",
    },
    attempts.map((a, i) =>
      svg(
        "rect",
        {
          x: x(starts[i]),
          width: Math.max(3, x(ends[i]) - x(starts[i])),
          y: 2,
          height: 12,
          class: `outcome-${a.outcome}`,
        },
        svg(
          "title",
          {},
          `attempt ${a.attempt}: ${a.outcome}${
            a.duration_ms === null ? "" : `, ${duration(a.duration_ms)}`
          }`,
        ),
      )
    ),
  );
}

/** Jobs linked to from a job's page (its dependencies, its dependents), each with its state. */
function linkList(links) {
  return h(
    "ul",
    { class: "links" },
    links.map((link) =>
      h(
        "li",
        {},
        jobLink(link.id),
        " ",
        link.state === null
          ? h("span", { class: "muted", title: "the job was deleted" }, "(deleted)")
          : badge(link.state),
      )
    ),
  );
}

function jobPage(id) {
  const head = h("div", { class: "job-head" });
  const error = h("div");
  const fields = h("dl", { class: "fields" });
  const history = h("div");
  const output = h("div", { class: "output" });
  const copy = h("div", { class: "copy" });
  fill(
    main,
    head,
    error,
    fields,
    section("Attempts", history),
    section("Output", output),
    section("Enqueue it again", copy),
  );
  let shown = null; // the attempt whose output is shown; null: the latest
  let last = null;
  const outputs = { stdout: null, stderr: null };

  async function loadOutput(job, attempts) {
    if (attempts.length === 0) {
      fill(output, note("It has not run yet."));
      return;
    }
    const n = shown ?? attempts.at(-1).attempt;
    const data = await api(`/api/jobs/${encodeURIComponent(id)}/attempts/${n}/output`);
    const picker = attempts.length > 1
      ? h(
        "div",
        { class: "attempt-picker" },
        "Attempt ",
        attempts.map((a) =>
          h("button", {
            type: "button",
            class: a.attempt === n ? "on" : "",
            "aria-pressed": a.attempt === n ? "true" : "false",
            on: {
              click() {
                shown = a.attempt === attempts.at(-1).attempt ? null : a.attempt;
                loadOutput(job, attempts).catch(() => {});
              },
            },
          }, String(a.attempt))
        ),
      )
      : null;
    const panes = ["stdout", "stderr"].map((stream) => {
      const s = data[stream];
      const old = outputs[stream];
      // Follow the end while the reader is at it (a live tail), else keep their place.
      const atEnd = old === null || old.scrollTop + old.clientHeight >= old.scrollHeight - 4;
      const pre = h("pre", { class: "out", id: `out-${stream}`, tabindex: "0" });
      appendOutput(pre, s.head);
      const gone = s.cut_bytes + s.hidden_bytes;
      if (gone > 0) {
        pre.append(
          h(
            "span",
            { class: "cut" },
            `\n[… ${bytes(gone)} ${
              s.cut_bytes > 0 && s.hidden_bytes === 0
                ? "not kept"
                : s.hidden_bytes > 0 && s.cut_bytes === 0
                ? "more in the download"
                : `not shown (${bytes(s.hidden_bytes)} of it in the download)`
            } …]\n`,
          ),
        );
      }
      appendOutput(pre, s.tail);
      const keep = old?.scrollTop ?? 0;
      outputs[stream] = pre;
      queueMicrotask(() => {
        pre.scrollTop = atEnd ? pre.scrollHeight : keep;
      });
      return h(
        "div",
        { class: "pane" },
        h(
          "div",
          { class: "pane-head" },
          h("strong", {}, stream),
          ` ${bytes(s.bytes)}${data.running ? ", running" : ""}`,
          s.bytes > 0
            ? h("a", {
              href: `/api/jobs/${encodeURIComponent(id)}/attempts/${n}/raw/${stream}`,
              download: "",
              class: "download",
            }, "download")
            : null,
        ),
        s.bytes === 0 ? note(data.running ? "nothing yet" : "no output") : pre,
      );
    });
    fill(
      output,
      picker,
      data.running
        ? h("p", { class: "tail-note" }, "● live: the output follows as the job writes it")
        : null,
      panes,
    );
  }

  return {
    async refresh() {
      const data = await load(`/api/jobs/${encodeURIComponent(id)}`);
      setAsOf(data.as_of);
      fill(error);
      const job = data.job;
      const act = (action, id, cls) => {
        const a = ACTIONS[action];
        if (app.session.read_only || !a.states.includes(job.state)) return null;
        if (action === "cancel" && job.state === "processing" && job.cancel_reason) {
          return h("span", { class: "note", id: "cancelling" }, "cancel requested: stopping…");
        }
        return h("button", {
          type: "button",
          id,
          class: cls,
          on: {
            async click(event) {
              if (action !== "retry") {
                const go = await confirmDialog(
                  `${a.verb} job ${job.id}?`,
                  job.command,
                  a.detail,
                  a.verb,
                );
                if (!go) return;
              }
              event.target.disabled = true;
              // No refresh starts while a delete runs: after it, the job's page would be a 404.
              const view = app.view;
              if (action === "delete") app.view = null;
              try {
                await api(a.path, { method: "POST", body: { ids: [job.id] } });
                if (action === "delete") {
                  fill(
                    main,
                    h("h1", {}, `Job ${job.id} deleted`),
                    note(h("a", { href: "/jobs", id: "back" }, "Back to the jobs")),
                  );
                  return;
                }
                await refresh();
              } catch (e) {
                if (action === "delete" && app.view === null) app.view = view;
                if (!(e instanceof SignedOut)) fill(error, errorBox(e));
              }
            },
          },
        }, a.verb);
      };
      // A job waiting for a time (as the Scheduled page lists it) can be made due at once.
      const waitsForTime = ["pending", "failed"].includes(job.state) && job.waiting_on === 0 &&
        Date.parse(job.run_at) > Date.parse(data.as_of);
      const runNow = app.session.read_only || !waitsForTime ? null : h("button", {
        type: "button",
        id: "run-now",
        title: "make it due now: the next free worker takes it",
        on: {
          async click(event) {
            event.target.disabled = true;
            try {
              await api("/api/jobs/run-now", { method: "POST", body: { ids: [job.id] } });
              await refresh();
            } catch (e) {
              if (!(e instanceof SignedOut)) fill(error, errorBox(e));
            }
          },
        },
      }, "Run now");
      fill(
        head,
        h("h1", {}, "Job ", h("span", { class: "id" }, job.id)),
        badge(job.state),
        runNow,
        act("retry", "retry", "primary"),
        act("cancel", "cancel", ""),
        act("delete", "delete", ""),
      );
      const row = (label, ...value) => [h("dt", {}, label), h("dd", {}, ...value)];
      const env = Object.entries(job.env ?? {});
      fill(
        fields,
        row("command", h("pre", { class: "cmd-full" }, job.command)),
        row("state", badge(job.state)),
        row("priority", String(job.priority)),
        row("attempts", attemptsText(job)),
        row(
          "timeout",
          job.timeout === null
            ? "default (job-timeout)"
            : job.timeout === 0
            ? "none"
            : duration(job.timeout * 1000),
        ),
        row("cwd", h("code", {}, job.cwd)),
        row(
          "env",
          env.length === 0 ? "-" : h(
            "table",
            { class: "env" },
            h(
              "tbody",
              {},
              env.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, h("code", {}, v)))),
            ),
          ),
        ),
        row("run at", timeEl(job.run_at)),
        row("created", timeEl(job.created_at)),
        row("updated", timeEl(job.updated_at)),
        row("finished", timeEl(job.finished_at)),
        job.worker_id ? row("worker", job.worker_id) : null,
        job.lease_expires_at ? row("lease until", timeEl(job.lease_expires_at)) : null,
        job.last_error ? row("last error", h("span", { class: "err" }, job.last_error)) : null,
        job.last_exit_code !== null ? row("last exit code", String(job.last_exit_code)) : null,
        job.cancel_reason ? row("cancel reason", job.cancel_reason) : null,
        data.waits_for.length > 0 ? row("waits for", linkList(data.waits_for)) : null,
        data.dependents.length > 0 ? row("waited on by", linkList(data.dependents)) : null,
      );
      const attempts = data.attempts;
      fill(
        history,
        attempts.length === 0 ? note("No attempt yet.") : [
          timeline(attempts),
          table(
            ["#", "Started", "Duration", "Outcome", "Exit", "Worker", "Error"],
            attempts.map((a) => [
              String(a.attempt),
              timeEl(a.started_at),
              a.duration_ms === null ? "running" : duration(a.duration_ms),
              h("span", { class: `badge outcome-${a.outcome}` }, a.outcome),
              a.exit_code !== null ? String(a.exit_code) : a.signal ?? "-",
              a.worker_id,
              a.error ?? "",
            ]),
          ),
        ],
      );
      // Output is read again only when the attempt it shows may have changed.
      const latest = attempts.at(-1);
      const key = JSON.stringify([
        shown,
        latest?.attempt,
        latest?.outcome,
        latest?.outcome === "running" ? data.as_of : null,
      ]);
      if (key !== last) {
        last = key;
        await loadOutput(job, attempts);
      }
      const copyButton = h("button", {
        type: "button",
        id: "copy",
        on: {
          async click() {
            try {
              await navigator.clipboard.writeText(data.enqueue_command);
              copyButton.textContent = "copied";
            } catch {
              copyButton.textContent = "select the text and copy it";
            }
          },
        },
      }, "Copy");
      fill(
        copy,
        h("pre", { class: "cmd-full", id: "enqueue-command" }, data.enqueue_command),
        copyButton,
      );
    },
    failed(e) {
      fill(error, errorBox(e));
    },
  };
}

/** An interval in its largest exact unit, as `schedule list` shows it: 90s, 2h, 1d. */
function everyText(seconds) {
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** How long after the "as of" time an instant comes: `in 5m`, `due` once it has come. */
function until(iso) {
  const ms = Date.parse(iso) - Date.parse(app.asOf);
  return ms <= 0 ? "due" : `in ${ms < 60_000 ? `${Math.ceil(ms / 1000)}s` : duration(ms)}`;
}

/** Recurring jobs (`queuectl schedule`): when each fires, its last job, pause/resume, run now. */
function schedulesPage() {
  const error = h("div");
  const body = h("div");
  const result = h("p", { class: "result", id: "action-result", "aria-live": "polite" });
  fill(
    main,
    h("h1", {}, "Recurring jobs"),
    note(
      "Added with ",
      h("code", {}, "queuectl schedule add"),
      "; a running worker enqueues each occurrence. Times are in your time zone (UTC on hover).",
    ),
    error,
    result,
    body,
  );
  // The outcome of the last action, kept here: a live refresh redraws the table, not this.
  const say = (parts, cls) => fill(result, ...parts).setAttribute("class", `result ${cls}`);
  /** Names with a request in flight: their buttons stay disabled across refreshes. */
  const busy = new Set();

  async function act(schedule, action) {
    say([], "");
    busy.add(schedule.name);
    try {
      const out = await api(
        `/api/schedules/${encodeURIComponent(schedule.name)}/${action}`,
        { method: "POST", body: {} },
      );
      if (action === "run") {
        say(["Enqueued job ", jobLink(out.job.id), ` from ${schedule.name}.`], "ok");
      } else {
        say([`${action === "pause" ? "Paused" : "Resumed"} ${schedule.name}.`], "ok");
      }
    } catch (e) {
      if (!(e instanceof SignedOut)) say([e.message], "bad");
    } finally {
      busy.delete(schedule.name);
      await refresh();
    }
  }

  const button = (schedule, action, label, cls = "") =>
    h("button", {
      type: "button",
      class: cls,
      "data-action": action,
      "data-schedule": schedule.name,
      "aria-label": `${label} ${schedule.name}`,
      disabled: busy.has(schedule.name),
      on: {
        click(event) {
          event.target.disabled = true; // one click, one request
          act(schedule, action);
        },
      },
    }, label);

  return {
    async refresh() {
      const data = await load("/api/schedules");
      setAsOf(data.as_of);
      fill(error);
      if (data.schedules.length === 0) {
        fill(
          body,
          note(
            "No recurring jobs yet. Add one: ",
            h("code", {}, `queuectl schedule add nightly --cron "0 2 * * *" -c ./backup.sh`),
          ),
        );
        return;
      }
      const readOnly = app.session.read_only;
      const headings = ["Name", "When", "Next run", "Last run", "Last job", "Status", "Command"];
      if (!readOnly) headings.push("Actions");
      fill(
        body,
        table(
          headings,
          data.schedules.map((s) => {
            const cells = [
              h("strong", { class: "id" }, s.name),
              s.cron !== null
                ? [h("code", {}, s.cron), " ", h("span", { class: "muted" }, s.time_zone)]
                : `every ${everyText(s.every)}`,
              s.paused
                ? h("span", { class: "muted" }, "paused")
                : s.next_run_at === null
                ? h("span", { class: "muted" }, "never")
                : [timeEl(s.next_run_at), " ", h("span", { class: "muted" }, until(s.next_run_at))],
              timeEl(s.last_run_at),
              s.last_job_id === null ? h("span", { class: "muted" }, "-") : [
                jobLink(s.last_job_id),
                " ",
                s.last_job_state === null
                  ? h("span", { class: "muted", title: "the job was deleted" }, "(gone)")
                  : badge(s.last_job_state),
              ],
              s.paused
                ? h("span", { class: "badge state-paused" }, "paused")
                : h("span", { class: "badge state-active" }, "active"),
              h("code", { class: "cmd", title: s.job.command ?? "" }, s.job.command ?? "?"),
            ];
            if (!readOnly) {
              cells.push(h(
                "span",
                { class: "row-actions" },
                button(s, "run", "Run now", "primary"),
                s.paused ? button(s, "resume", "Resume") : button(s, "pause", "Pause"),
              ));
            }
            return cells;
          }),
          { rowClass: (i) => (data.schedules[i].paused ? "paused" : null) },
        ),
        readOnly
          ? note("Read-only: actions are switched off (", h("code", {}, "--read-only"), ").")
          : null,
      );
    },
    failed(e) {
      fill(error, errorBox(e));
    },
  };
}

function workersPage() {
  const body = h("div");
  const error = h("div");
  fill(main, h("h1", {}, "Workers"), error, body);
  return {
    async refresh() {
      const data = await load("/api/workers");
      setAsOf(data.as_of);
      fill(error);
      fill(body, workerSummary(data.workers, data.problems, data.as_of));
    },
    failed(e) {
      fill(error, errorBox(e));
    },
  };
}

function settingsPage() {
  const body = h("div");
  const error = h("div");
  fill(
    main,
    h("h1", {}, "Settings"),
    note(
      "Shown here, changed with ",
      h("code", {}, "queuectl config set KEY VALUE"),
      " (workers pick changes up as they go).",
    ),
    error,
    body,
  );
  return {
    async refresh() {
      const data = await load("/api/settings");
      setAsOf(data.as_of);
      fill(error);
      fill(
        body,
        h("p", {}, "Queue: ", h("code", {}, data.location)),
        table(
          ["Key", "Value", "Default", "Meaning"],
          data.settings.map((s) => [
            h("code", {}, s.key),
            s.set ? h("strong", {}, s.text) : s.text,
            s.default_text,
            s.help,
          ]),
        ),
      );
    },
    failed(e) {
      fill(error, errorBox(e));
    },
  };
}

/** Signs in with the token or one-time code from the URL fragment, or one pasted into the form. */
function loginPage() {
  const next = new URL(location.href).searchParams.get("next");
  const target = next !== null && next.startsWith("/") && !next.startsWith("//") ? next : "/";
  const message = h("div");
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    "aria-label": "token",
    placeholder: "token",
  });
  const signIn = async (body) => {
    try {
      await api("/api/login", { method: "POST", body });
      location.replace(target);
    } catch (e) {
      fill(message, errorBox(e));
    }
  };
  fill(
    main,
    h("h1", {}, "Sign in"),
    note(
      "Open the link ",
      h("code", {}, "queuectl dashboard"),
      " printed, or paste the token from the file it named.",
    ),
    message,
    h(
      "form",
      {
        class: "login",
        on: {
          submit(event) {
            event.preventDefault();
            signIn({ token: input.value.trim() });
          },
        },
      },
      input,
      h("button", { type: "submit", class: "primary" }, "Sign in"),
    ),
  );
  const fragment = new URLSearchParams(location.hash.slice(1));
  // The secret leaves the address bar (and history) before anything else happens.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (fragment.has("token")) signIn({ token: fragment.get("token") });
  else if (fragment.has("code")) signIn({ code: fragment.get("code") });
  return null;
}

const PAGES = [
  [/^\/$/, () => overviewPage()],
  [/^\/jobs$/, () => jobsPage({ dead: false })],
  [/^\/jobs\/([^/]+)$/, (m) => jobPage(decodeURIComponent(m[1]))],
  [/^\/dlq$/, () => jobsPage({ dead: true })],
  [/^\/scheduled$/, () => scheduledPage()],
  [/^\/schedules$/, () => schedulesPage()],
  [/^\/workers$/, () => workersPage()],
  [/^\/settings$/, () => settingsPage()],
];

async function route() {
  markNav();
  for (const [pattern, make] of PAGES) {
    const m = pattern.exec(location.pathname);
    if (m) {
      app.view = make(m);
      document.title = `${main.querySelector("h1")?.textContent ?? "queuectl"} · queuectl`;
      await refresh();
      document.title = `${main.querySelector("h1")?.textContent ?? "queuectl"} · queuectl`;
      return;
    }
  }
  app.view = null;
  fill(main, h("h1", {}, "Not found"), note(h("a", { href: "/" }, "Back to the overview")));
}

async function start() {
  applyTheme(localStorage.getItem("queuectl-theme") ?? "auto");
  const root = document.getElementById("app");
  if (location.pathname === "/login") {
    fill(
      root,
      h(
        "header",
        { class: "top" },
        h("span", { class: "brand" }, logo(), "queuectl"),
        h("div", { class: "status" }, themeButton),
      ),
      main,
    );
    loginPage();
    return;
  }
  fill(root, header(), main);
  setLive("connecting");
  // The session and the page's data are asked for at once; pages wait for both.
  app.sessionReady = api("/api/session").then((session) => {
    app.session = session;
    readOnlyEl.hidden = !session.read_only;
    setAsOf(session.as_of);
    connect();
  });
  app.sessionReady.catch((e) => {
    if (!(e instanceof SignedOut)) fill(main, errorBox(e));
  });
  await route();
}

start();
