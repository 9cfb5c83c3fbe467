// Building the page: elements from data, always as text. Nothing in the client turns a string
// into markup (no HTML-string API of the DOM is used anywhere; tests/web/handler_test.ts checks),
// so job fields and output reach the page only as text nodes: `<script>` in a job's output is
// just text.

/**
 * An element: `h("a", { href, class, title, on: { click } }, ...children)`. Strings and numbers
 * become text nodes; null, undefined and false are skipped; arrays are flattened.
 */
export function h(tag, props = {}, ...children) {
  return build(document.createElement(tag), props, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element, as `h` builds HTML ones. */
export function svg(tag, props = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

function build(el, props, children) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === "class") {
      el.setAttribute("class", value);
    } else if (key === "style" || key.startsWith("on")) {
      // Inline styles and handlers are refused by the CSP anyway; never build them.
      throw new Error(`h(): ${key} is not allowed`);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  appendAll(el, children);
  return el;
}

/** Appends children as `h` does. */
export function appendAll(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(
      typeof child === "string" || typeof child === "number" ? String(child) : child,
    );
  }
  return el;
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return appendAll(el, children);
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** `YYYY-MM-DD HH:MM:SS` in the browser's time zone. */
export function localText(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** `YYYY-MM-DD HH:MM:SS UTC`. */
export function utcText(date) {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A `<time>`: local time, UTC on hover. */
export function timeEl(iso) {
  if (iso === null || iso === undefined) return h("span", { class: "muted" }, "-");
  const date = new Date(iso);
  return h("time", { datetime: iso, title: utcText(date) }, localText(date));
}

/** Milliseconds for people: `250ms`, `1.5s`, `45s`, `5m`, `1h30m`, `2d3h`. */
export function duration(ms) {
  if (ms === null || ms === undefined) return "-";
  if (ms < 0) return "-" + duration(-ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) {
    const s = Math.round(ms / 100) / 10;
    return `${Number.isInteger(s) ? s.toFixed(0) : s.toFixed(1)}s`;
  }
  let rest = Math.round(ms / 1000);
  let out = "";
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]]) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${n}${unit}`;
  }
  return out;
}

/** How long before `asOf` an instant was: `3s ago`. */
export function ago(iso, asOf) {
  if (!iso) return "-";
  const ms = Math.max(0, Date.parse(asOf) - Date.parse(iso));
  return `${ms < 60_000 ? `${Math.floor(ms / 1000)}s` : duration(ms)} ago`;
}

/** Bytes: `512 B`, `1.2 KiB`, `3.4 MiB`. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A count with thousands separators: `1,000,000`. */
export function count(n) {
  return Number(n).toLocaleString("en-US");
}

// ---------------------------------------------------------------------------------------------
// Terminal output. Colours (SGR: ESC [ … m) become classes; every other control character or
// escape sequence is shown escaped, as `queuectl logs` shows it (`\x1b[2J`), never obeyed.
// ---------------------------------------------------------------------------------------------

const CONTROL =
  // deno-lint-ignore no-control-regex
  /\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/** Control characters as visible escapes: `\x1b`, `\u{202e}`. */
export function escapeControls(text) {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g,
    (c) => {
      const code = c.charCodeAt(0);
      return code <= 0xff
        ? `\\x${code.toString(16).padStart(2, "0")}`
        : `\\u{${code.toString(16)}}`;
    },
  );
}

/** Applies one SGR sequence's parameters to `style` (fg, bg, bold, dim, italic, underline). */
function applySgr(style, params) {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => p === "" ? 0 : Number(p));
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) {
      Object.assign(style, {
        fg: null,
        bg: null,
        bold: false,
        dim: false,
        italic: false,
        underline: false,
      });
    } else if (c === 1) style.bold = true;
    else if (c === 2) style.dim = true;
    else if (c === 3) style.italic = true;
    else if (c === 4) style.underline = true;
    else if (c === 22) style.bold = style.dim = false;
    else if (c === 23) style.italic = false;
    else if (c === 24) style.underline = false;
    else if (c >= 30 && c <= 37) style.fg = c - 30;
    else if (c >= 90 && c <= 97) style.fg = c - 90 + 8;
    else if (c === 39) style.fg = null;
    else if (c >= 40 && c <= 47) style.bg = c - 40;
    else if (c >= 100 && c <= 107) style.bg = c - 100 + 8;
    else if (c === 49) style.bg = null;
    else if (c === 38 || c === 48) {
      // 256 colours keep the 16 they share with the basic palette; true colour is dropped.
      const key = c === 38 ? "fg" : "bg";
      if (codes[i + 1] === 5) {
        const n = codes[i + 2];
        style[key] = n !== undefined && n < 16 ? n : null;
        i += 2;
      } else if (codes[i + 1] === 2) i += 4;
    }
  }
}

function styleClass(style) {
  const classes = [];
  if (style.fg !== null) classes.push(`fg${style.fg}`);
  if (style.bg !== null) classes.push(`bg${style.bg}`);
  if (style.bold) classes.push("b");
  if (style.dim) classes.push("dim");
  if (style.italic) classes.push("i");
  if (style.underline) classes.push("u");
  return classes.join(" ");
}

/** Appends job output to `el` as text: colours as classes, other controls escaped. */
export function appendOutput(el, text) {
  const style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  const put = (part) => {
    if (part === "") return;
    const cls = styleClass(style);
    el.append(cls === "" ? part : h("span", { class: cls }, part));
  };
  const input = text.replaceAll("\r\n", "\n");
  let at = 0;
  for (const match of input.matchAll(CONTROL)) {
    put(input.slice(at, match.index));
    at = match.index + match[0].length;
    // deno-lint-ignore no-control-regex
    const sgr = /^\x1b\[([0-9;:]*)m$/.exec(match[0]);
    if (sgr) applySgr(style, sgr[1]);
    else {el.append(
        h(
          "span",
          { class: "ctl", title: "a control sequence, shown, not obeyed" },
          escapeControls(match[0]),
        ),
      );}
  }
  put(input.slice(at));
  return el;
}
