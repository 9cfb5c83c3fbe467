/**
 * Presentation for terminals: colour, aligned tables, escaping. JSON shapes are in lib/json.ts.
 *
 * @module
 */

import type { JobState } from "../job/state.ts";
import { formatLocal } from "../time.ts";

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
  }
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Visible width of text that may hold colour codes. */
function width(text: string): number {
  return text.replace(ANSI, "").length;
}

/**
 * Aligns rows into columns separated by two spaces. `header` is printed bold; the last column is
 * not padded.
 */
export function table(p: Palette, header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => width(r[i] ?? ""))));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) =>
      i === cells.length - 1 ? cell : cell + " ".repeat(widths[i]! - width(cell))
    ).join("  ").trimEnd() + "\n";
  return p.bold(line(header).trimEnd()) + "\n" + rows.map(line).join("");
}

/** Shortens text to `max` characters on one line, marking the cut with an ellipsis. */
export function clip(text: string, max: number): string {
  // deno-lint-ignore no-control-regex
  const oneLine = text.replace(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+/g, " ");
  return oneLine.length <= max ? oneLine : oneLine.slice(0, max - 1) + "…";
}

export function localTime(ms: number | null): string {
  return ms === null ? "-" : formatLocal(ms);
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
