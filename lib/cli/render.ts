/**
 * Presentation for terminals: colour, aligned tables, escaping. JSON shapes are in lib/json.ts.
 *
 * @module
 */

import type { JobState } from "../job/state.ts";
import type { JudgedWorker } from "../worker/liveness.ts";
import { formatAge, formatLocal } from "../time.ts";

export type Paint = (text: string) => string;

export interface Palette {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
  magenta: Paint;
}

const plain: Paint = (text) => text;

/** ANSI colours when `enabled`; identity functions otherwise. */
export function palette(enabled: boolean): Palette {
  const sgr = (code: string): Paint => enabled ? (t) => `\x1b[${code}m${t}\x1b[0m` : plain;
  return {
    bold: sgr("1"),
    dim: sgr("2"),
    red: sgr("31"),
    green: sgr("32"),
    yellow: sgr("33"),
    cyan: sgr("36"),
    magenta: sgr("35"),
  };
}

export function stateColor(p: Palette, state: JobState): Paint {
  switch (state) {
    case "pending":
      return p.yellow;
    case "processing":
      return p.cyan;
    case "completed":
      return p.green;
    case "failed":
      return p.magenta;
    case "dead":
      return p.red;
    case "cancelled":
      return p.dim;
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Characters a terminal shows two columns wide (East Asian wide and fullwidth forms). */
const WIDE =
  /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/;
/** Characters that take no column of their own (combining marks, zero-width, selectors). */
const ZERO_WIDTH = /[\u0300-\u036f\u200b-\u200f\u20d0-\u20ff\ufe00-\ufe0f]/;

function charWidth(c: string): number {
  if (c.length > 1) return 2; // outside the BMP: emoji and CJK extensions, wide on terminals
  return ZERO_WIDTH.test(c) ? 0 : WIDE.test(c) ? 2 : 1;
}

/** Columns that text takes on a terminal (colour codes take none). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const c of text.replace(ANSI, "")) width += charWidth(c);
  return width;
}

export interface TableOptions {
  /**
   * Fit lines to this many columns (the terminal's) by clipping the last column, which keeps at
   * least `MIN_LAST_COLUMN` columns (the line wraps on a terminal narrower than that).
   */
  width?: number;
}

/** The fewest columns a clipped last column keeps. */
const MIN_LAST_COLUMN = 12;

/**
 * Aligns rows into columns separated by two spaces. `header` is printed bold; the last column is
 * not padded.
 */
export function table(
  p: Palette,
  header: readonly string[],
  rows: readonly string[][],
  options: TableOptions = {},
): string {
  const widths = header.map((h, i) =>
    Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[i] ?? "")))
  );
  const last = header.length - 1;
  const lastMax = options.width === undefined ? Infinity : Math.max(
    MIN_LAST_COLUMN,
    options.width - widths.slice(0, last).reduce((a, w) => a + w + 2, 0),
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) =>
      i === last
        ? (displayWidth(cell) > lastMax ? clip(cell, lastMax) : cell)
        : cell + " ".repeat(widths[i]! - displayWidth(cell))
    ).join("  ").trimEnd() + "\n";
  return p.bold(line(header).trimEnd()) + "\n" + rows.map(line).join("");
}

/**
 * Shortens text to `max` columns on one line, marking the cut with an ellipsis: line breaks
 * become ⏎ (so a multi-line command shows as one), other control characters a space.
 */
export function clip(text: string, max: number): string {
  const oneLine = text.replace(/\r?\n/g, "⏎")
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+/g, " ");
  if (displayWidth(oneLine) <= max) return oneLine;
  let out = "";
  let width = 0;
  for (const c of oneLine) {
    if (width + charWidth(c) > max - 1) break;
    out += c;
    width += charWidth(c);
  }
  return out + "…";
}

export function localTime(ms: number | null): string {
  return ms === null ? "-" : formatLocal(ms);
}

/** A heartbeat as people read it: `3s ago` (its age by the store's clock). */
export function heartbeatAgo(judged: JudgedWorker): string {
  return formatAge(judged.worker.heartbeatAgeMs);
}

/** A worker's state for a table: `stale` and `gone` in red. */
export function workerState(p: Palette, judged: JudgedWorker): string {
  const state = judged.liveness.state;
  return state === "gone" || state === "stale" ? p.red(state) : state;
}

/**
 * Makes job output safe to show on a terminal: control characters (except newline and tab),
 * DEL, C1 controls and bidirectional overrides become visible escapes such as `\x1b`, so a job
 * cannot move the cursor, retitle the window or reorder text in the reader's terminal.
 */
export function escapeControls(text: string): string {
  return text.replaceAll("\r\n", "\n").replace(
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

/** Bytes as a short size for people: 512 B, 1.2 KiB, 3.4 MiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export function json(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
