/**
 * The checks every request passes before any route sees it, and the headers every response
 * carries: the Host header against the names the server is bound to (DNS rebinding), the origin of
 * requests that change something (CSRF), and a strict Content-Security-Policy.
 *
 * @module
 */

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/** Whether a bind address is the loopback interface only. */
export function isLoopback(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return name === "localhost" || name === "::1" || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** `::1` → `[::1]`: a name as it appears in a Host header. */
function hostForm(name: string): string {
  const bare = name.toLowerCase().replace(/\.$/, "");
  return bare.includes(":") && !bare.startsWith("[") ? `[${bare}]` : bare;
}

/**
 * The names a Host header may carry for a server bound to `hostname`: the loopback names for a
 * loopback bind; for any other, the name given, this machine's hostname and, for a wildcard
 * (0.0.0.0, ::), the addresses of its interfaces.
 */
export function allowedHostNames(hostname: string): Set<string> {
  const names = new Set<string>();
  if (isLoopback(hostname)) {
    for (const name of LOOPBACK_NAMES) names.add(name);
    names.add(hostForm(hostname));
    return names;
  }
  names.add(hostForm(hostname));
  try {
    names.add(hostForm(Deno.hostname()));
  } catch { /* no --allow-sys: the name given must do */ }
  if (hostname === "0.0.0.0" || hostname === "::" || hostname === "[::]") {
    for (const name of LOOPBACK_NAMES) names.add(name);
    try {
      for (const nic of Deno.networkInterfaces()) names.add(hostForm(nic.address));
    } catch { /* as above */ }
  }
  return names;
}

/** A Host header's name (in Host form) and port, or undefined when it is malformed. */
function splitHost(header: string): { name: string; port: number } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:\[\]]+):(\d{1,5})$/i.exec(header.trim());
  return match === null ? undefined : { name: hostForm(match[1]!), port: Number(match[2]) };
}

/**
 * Whether a Host header names this server: one of `names` (case-insensitively, a trailing dot
 * allowed) with the bound port. Anything else is a request meant for another site whose name
 * resolves here: DNS rebinding.
 */
export function hostAllowed(
  header: string | null,
  names: ReadonlySet<string>,
  port: number,
): boolean {
  const host = header === null ? undefined : splitHost(header);
  return host !== undefined && host.port === port && names.has(host.name);
}

/**
 * Whether a request that changes something comes from the dashboard's own pages: its `Origin` is
 * this server's, or, without one, `Sec-Fetch-Site` says same-origin. A request with neither comes
 * from a program, not a browser (browsers send them on every POST), and may pass only with the
 * token itself (`Authorization: Bearer`), which no other site can send.
 */
export function sameOrigin(
  request: Request,
  host: string,
  via: "bearer" | "cookie" | null,
): boolean {
  const origin = request.headers.get("origin");
  if (origin !== null) {
    const own = splitHost(host);
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // "null", or not a URL
    }
    return own !== undefined && url.protocol === "http:" &&
      hostForm(url.hostname) === own.name && Number(url.port || "80") === own.port;
  }
  const site = request.headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin";
  return via === "bearer";
}

/**
 * What every response carries. No inline script or style anywhere, nothing from elsewhere, never
 * framed; nothing cached (pages show job output, which can hold secrets); no referrer; and no
 * CORS header of any kind, so other origins can read nothing.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; " +
    "frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
  // Another site's page may not load our responses as scripts or images, even same-site.
  "cross-origin-resource-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
};

/** Adds the security headers to a response (replacing any of the same name). */
export function secure(response: Response): Response {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
  return response;
}
