/**
 * The one HTML page: a shell with no data in it (the module in lib/web/client/ fetches and renders
 * everything), so it never needs escaping and a public copy (the login page) gives nothing away.
 *
 * @module
 */

export const SHELL_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>queuectl</title>
<link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/app.css">
<link rel="modulepreload" href="/assets/dom.js">
<link rel="modulepreload" href="/assets/chart.js">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<div id="app"><noscript>The queuectl dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;
