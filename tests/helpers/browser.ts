/**
 * A real headless browser for the dashboard tests: Debian's chromium (/usr/bin/chromium) driven
 * by playwright-core, which never downloads a browser of its own.
 *
 * ```ts
 * await using browser = await launchBrowser();
 * const page = await browser.browser.newPage();
 * const watch = await watchPage(page);
 * await page.goto(url);
 * assertCleanPage(watch);
 * ```
 *
 * Only tests import this module (playwright-core is a test dependency, pinned in deno.lock).
 *
 * @module
 */

// Pinned inline, as the store's npm:postgres will be: the version is visible where it is used,
// and deno.lock (frozen) holds its integrity.
// deno-lint-ignore no-import-prefix
import { type Browser, chromium, type Page } from "npm:playwright-core@1.65.1";

/** Debian's chromium: `apt-get install chromium` (`.ci/run` installs it when missing). */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * The flags Debian's chromium needs here, and why:
 * - `--no-sandbox`: the tests run as root (CI does), where chromium refuses its sandbox;
 * - `--headless`: no display (playwright passes it as well for `headless: true`);
 * - `--disable-gpu`: no GPU; software rendering is enough and steadier for screenshots;
 * - `--disable-dev-shm-usage`: containers often have a small /dev/shm (Debian's wrapper means
 *   to add this itself but its size check fails when `findmnt` lists two mounts);
 * - `--disable-background-networking`, `--disable-component-update`, `--disable-sync`,
 *   `--disable-quic`, `--no-first-run`: no calls to Google's services, no updater, no first-run
 *   UI; the tests talk to 127.0.0.1 and nothing else.
 * The user data dir is a fresh temporary one that playwright makes and removes for each launch
 * (it refuses `--user-data-dir` in `launch()` for exactly that reason).
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

export class BrowserUnavailableError extends Error {
  override name = "BrowserUnavailableError";
}

export interface LaunchedBrowser extends AsyncDisposable {
  readonly browser: Browser;
}

/** Launches headless chromium; disposal closes it (and every context and page). */
export async function launchBrowser(): Promise<LaunchedBrowser> {
  try {
    Deno.statSync(CHROMIUM);
  } catch {
    throw new BrowserUnavailableError(
      `${CHROMIUM} not found: apt-get install chromium (.ci/run installs it); ` +
        "never let playwright download a browser",
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: 30_000,
    // Chromium inherits the test's environment otherwise; no proxy must come between it and
    // 127.0.0.1.
    env: { ...Deno.env.toObject(), NO_PROXY: "*", no_proxy: "*" },
  });
  return {
    browser,
    [Symbol.asyncDispose]: () => browser.close(),
  };
}

/** A Content-Security-Policy violation seen by the page (`securitypolicyviolation`). */
export interface CspViolation {
  directive: string;
  blockedUri: string;
  sample: string;
}

/** What went wrong on a page: filled while the page lives. */
export interface PageWatch {
  /** `console.error` calls and the browser's own errors in the console (failed loads, CSP). */
  readonly consoleErrors: string[];
  /** Exceptions no script caught. */
  readonly pageErrors: string[];
  readonly cspViolations: CspViolation[];
  /** alert/confirm/prompt messages; each dialog is dismissed. An XSS test wants none. */
  readonly dialogs: string[];
}

const CSP_BINDING = "__queuectlTestCspViolation";

/** Starts recording a page's errors, CSP violations and dialogs; call before `goto`. */
export async function watchPage(page: Page): Promise<PageWatch> {
  const watch: PageWatch = { consoleErrors: [], pageErrors: [], cspViolations: [], dialogs: [] };
  page.on("console", (message) => {
    if (message.type() === "error") watch.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => watch.pageErrors.push(error.message));
  page.on("dialog", (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  // The binding and the init script come in through the DevTools protocol, so the page's own
  // CSP does not stop them from reporting on it.
  await page.exposeBinding(CSP_BINDING, (_source, violation: CspViolation) => {
    watch.cspViolations.push(violation);
  });
  // A string, not a function: the type check has no DOM library (deno check runs Deno's).
  await page.addInitScript({
    content: `document.addEventListener("securitypolicyviolation", (event) => {
      globalThis.${CSP_BINDING}?.({
        directive: event.violatedDirective,
        blockedUri: event.blockedURI,
        sample: event.sample,
      });
    });`,
  });
  return watch;
}

/** Throws, listing everything, unless the page had no error, violation or dialog. */
export function assertCleanPage(watch: PageWatch): void {
  const problems = [
    ...watch.consoleErrors.map((e) => `console error: ${e}`),
    ...watch.pageErrors.map((e) => `uncaught: ${e}`),
    ...watch.cspViolations.map((v) => `CSP ${v.directive} blocked ${v.blockedUri || v.sample}`),
    ...watch.dialogs.map((d) => `dialog ${d}`),
  ];
  if (problems.length > 0) throw new Error(`the page was not clean:\n  ${problems.join("\n  ")}`);
}

/**
 * Where tests keep screenshots and other artefacts: `QUEUECTL_TEST_ARTIFACTS`, else
 * `<repo>/.tmp/artifacts` (git ignores .tmp/). Creates the directory.
 */
export function artifactPath(name: string): string {
  const dir = Deno.env.get("QUEUECTL_TEST_ARTIFACTS") ||
    new URL("../../.tmp/artifacts", import.meta.url).pathname;
  Deno.mkdirSync(dir, { recursive: true });
  return `${dir}/${name}`;
}
