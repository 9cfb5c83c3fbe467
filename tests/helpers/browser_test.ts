/**
 * The browser helper, for real: Debian's chromium, driven by playwright-core, against a page
 * served by Deno.serve on 127.0.0.1. Fails (never skips) when chromium is missing.
 */

import assert from "node:assert/strict";
import {
  artifactPath,
  assertCleanPage,
  CHROMIUM_ARGS,
  launchBrowser,
  watchPage,
} from "./browser.ts";
import { allPids, isRunning, procStat } from "./proc.ts";

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'";

const PAGES: Record<string, { type: string; body: string }> = {
  "/": {
    type: "text/html; charset=utf-8",
    body: `<!doctype html><html><head><title>queuectl test page</title>
      <link rel="stylesheet" href="/app.css"></head>
      <body><h1>queuectl</h1><button id="go">Go</button><p id="out">not clicked</p>
      <script src="/app.js"></script></body></html>`,
  },
  "/app.js": {
    type: "text/javascript",
    body: `let clicks = 0;
      document.getElementById("go").addEventListener("click", () => {
        document.getElementById("out").textContent = "clicked " + ++clicks;
      });`,
  },
  "/app.css": { type: "text/css", body: "body { font-family: sans-serif; margin: 2em; }" },
  // A page that breaks the rules: an inline script (CSP refuses it) and a console.error.
  "/bad": {
    type: "text/html; charset=utf-8",
    body: `<!doctype html><html><body><p id="inline">inline did not run</p>
      <script>document.getElementById("inline").textContent = "inline ran";</script>
      <script src="/bad.js"></script></body></html>`,
  },
  "/bad.js": { type: "text/javascript", body: `console.error("bad.js says boom");` },
};

function serve(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    // Browsers ask for it unprompted; a 404 would be a console error on every page.
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    const page = PAGES[path];
    if (!page) return new Response("not found", { status: 404 });
    return new Response(page.body, {
      headers: { "content-type": page.type, "content-security-policy": CSP },
    });
  });
}

/** Processes descended from this test process whose command line is chromium's. */
function chromiumDescendants(): number[] {
  const found: number[] = [];
  for (const pid of allPids()) {
    if (!isRunning(pid)) continue;
    let cmdline = "";
    try {
      cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    } catch {
      continue;
    }
    if (!cmdline.includes("chromium")) continue;
    for (let p = procStat(pid)?.ppid ?? 0, hops = 0; p > 1 && hops < 20; hops++) {
      if (p === Deno.pid) {
        found.push(pid);
        break;
      }
      p = procStat(p)?.ppid ?? 0;
    }
  }
  return found;
}

Deno.test("launchBrowser() drives Debian's chromium: load, click, DOM, console, CSP, screenshot", async () => {
  await using server = serve();
  const origin = `http://127.0.0.1:${server.addr.port}`;
  {
    await using launched = await launchBrowser();
    const { browser } = launched;
    assert.match(browser.version(), /^\d+\.\d+\./);
    const processes = chromiumDescendants();
    assert.ok(processes.length > 0, "chromium runs as our child");
    const cmdlines = processes.map((pid) => Deno.readTextFileSync(`/proc/${pid}/cmdline`));
    const main = cmdlines.find((c) => c.includes("--remote-debugging-pipe")) ?? "";
    for (const flag of CHROMIUM_ARGS) assert.ok(main.includes(flag), `chromium got ${flag}`);
    assert.match(main, /--user-data-dir=\/tmp\/playwright_chromiumdev_profile-/);

    const context = await browser.newContext({ viewport: { width: 800, height: 600 } });
    const page = await context.newPage();
    const watch = await watchPage(page);
    const response = await page.goto(`${origin}/`);
    assert.equal(response?.status(), 200);
    assert.equal(await page.title(), "queuectl test page");
    assert.equal(await page.textContent("#out"), "not clicked");
    await page.click("#go");
    await page.click("#go");
    assert.equal(await page.textContent("#out"), "clicked 2");
    assertCleanPage(watch);

    const shot = artifactPath("browser-smoke.png");
    await page.screenshot({ path: shot });
    const png = await Deno.readFile(shot);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
    const view = new DataView(png.buffer, png.byteOffset);
    assert.deepEqual([view.getUint32(16), view.getUint32(20)], [800, 600], "the viewport's size");

    // The same watch on a page that breaks the rules sees every kind of problem.
    const bad = await context.newPage();
    const badWatch = await watchPage(bad);
    await bad.goto(`${origin}/bad`);
    await bad.waitForFunction("document.readyState === 'complete'");
    assert.equal(await bad.textContent("#inline"), "inline did not run", "CSP blocked it");
    assert.deepEqual(
      badWatch.cspViolations.map((v) => [v.directive, v.blockedUri]),
      [["script-src-elem", "inline"]],
    );
    assert.ok(badWatch.consoleErrors.includes("bad.js says boom"), badWatch.consoleErrors.join());
    assert.ok(
      badWatch.consoleErrors.some((e) => e.includes("Content Security Policy")),
      "the browser's own CSP message reaches the console list too",
    );
    assert.throws(() => assertCleanPage(badWatch), /console error: bad\.js says boom/);
    await bad.evaluate("setTimeout(() => alert('xss'), 0)");
    const deadline = performance.now() + 5_000;
    while (badWatch.dialogs.length === 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.deepEqual(badWatch.dialogs, ["alert: xss"], "dialogs are recorded and dismissed");
  }
  assert.deepEqual(chromiumDescendants(), [], "disposal leaves no chromium process");
  await server.shutdown();
});
