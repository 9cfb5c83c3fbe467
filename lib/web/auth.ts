/**
 * Who may use the dashboard: whoever holds its token. A browser signs in once, by posting the
 * token (from the URL fragment the command prints) to `/api/login`, and gets a session cookie
 * (`HttpOnly; SameSite=Strict`) that every later request, `EventSource` included, carries by
 * itself. Programs may send `Authorization: Bearer <token>` instead.
 *
 * The cookie holds no token: it is an expiry signed with HMAC-SHA-256 under the token, so it
 * outlives a restart of the dashboard, and changing the token file ends every session. Every
 * comparison of a secret is constant-time.
 *
 * @module
 */

import type { Clock } from "../clock.ts";

/** How long a session lasts. */
export const SESSION_MS = 7 * 86_400_000;
/** How long a one-time login code (`--open`) stays usable, unused. */
export const LOGIN_CODE_MS = 120_000;

const encoder = new TextEncoder();

/** Equal contents, in time that depends only on the length of `b`. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** 32 random bytes as hex: a token of 256 bits. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export interface AuthOptions {
  clock: Clock;
  /** The cookie's name; one per port, since browsers share cookies across a host's ports. */
  cookieName: string;
}

export class Auth {
  readonly cookieName: string;
  readonly #token: Uint8Array<ArrayBuffer>;
  readonly #clock: Clock;
  #key: Promise<CryptoKey> | undefined;
  /** One-time login codes → when they expire. */
  readonly #codes = new Map<string, number>();

  constructor(token: string, options: AuthOptions) {
    this.#token = encoder.encode(token);
    this.#clock = options.clock;
    this.cookieName = options.cookieName;
  }

  #hmacKey(): Promise<CryptoKey> {
    this.#key ??= crypto.subtle.importKey(
      "raw",
      this.#token,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    return this.#key;
  }

  /** Whether `candidate` is the token (constant-time). */
  isToken(candidate: string): boolean {
    return constantTimeEqual(encoder.encode(candidate), this.#token);
  }

  /** A code that signs one browser in once, within `LOGIN_CODE_MS` (for `--open`). */
  loginCode(): string {
    const code = base64url(crypto.getRandomValues(new Uint8Array(24)));
    this.#codes.set(code, this.#clock.monotonic() + LOGIN_CODE_MS);
    return code;
  }

  /** Uses up a login code; true when it was valid. */
  useLoginCode(candidate: string): boolean {
    const now = this.#clock.monotonic();
    let found: string | undefined;
    for (const [code, expires] of this.#codes) {
      if (expires <= now) this.#codes.delete(code);
      // Every code is compared, so the time taken says nothing about which one matched.
      else if (constantTimeEqual(encoder.encode(candidate), encoder.encode(code))) found = code;
    }
    if (found === undefined) return false;
    this.#codes.delete(found);
    return true;
  }

  /** A new session's cookie value: its expiry and the expiry's HMAC under the token. */
  async session(): Promise<string> {
    const expires = (this.#clock.now() + SESSION_MS).toString(36);
    const mac = await crypto.subtle.sign(
      "HMAC",
      await this.#hmacKey(),
      encoder.encode(`s1.${expires}`),
    );
    return `s1.${expires}.${base64url(new Uint8Array(mac))}`;
  }

  /** Whether a cookie value is a session signed under this token that has not expired. */
  async isSession(value: string): Promise<boolean> {
    const [version, expires, mac] = value.split(".");
    if (version !== "s1" || expires === undefined || mac === undefined) return false;
    if (!/^[0-9a-z]{1,12}$/.test(expires) || parseInt(expires, 36) <= this.#clock.now()) {
      return false;
    }
    const signature = fromBase64url(mac);
    if (signature === undefined || signature.length !== 32) return false;
    // HMAC verification by WebCrypto compares in constant time.
    return await crypto.subtle.verify(
      "HMAC",
      await this.#hmacKey(),
      signature,
      encoder.encode(`s1.${expires}`),
    );
  }

  /** The Set-Cookie value that starts a session. */
  async sessionCookie(): Promise<string> {
    return `${this.cookieName}=${await this.session()}; HttpOnly; SameSite=Strict; Path=/; ` +
      `Max-Age=${SESSION_MS / 1000}`;
  }

  /** The Set-Cookie value that ends one. */
  clearCookie(): string {
    return `${this.cookieName}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }

  /**
   * How a request proves who it is: `bearer` (a program), `cookie` (a signed-in browser), or
   * null. A wrong token or a bad cookie is null, as no credentials are.
   */
  async check(request: Request): Promise<"bearer" | "cookie" | null> {
    const authorization = request.headers.get("authorization");
    if (authorization !== null) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      return match !== null && this.isToken(match[1]!) ? "bearer" : null;
    }
    const value = cookie(request, this.cookieName);
    return value !== undefined && await this.isSession(value) ? "cookie" : null;
  }
}

/** The value of cookie `name` in the request's Cookie header. */
function cookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
