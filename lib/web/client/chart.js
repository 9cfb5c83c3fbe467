// The overview's chart: attempts per minute over the last hour, completed and failed stacked, as
// inline SVG. About 60 lines of our own instead of a chart library (docs/design.md says why).

import { h, localText, svg } from "./dom.js";

const WIDTH = 600;
const HEIGHT = 120;
const TOP = 8;
const BOTTOM = 2;

/** A "nice" axis maximum at or above `n`: 1, 2, 5, 10, 20, 50, … */
function niceMax(n) {
  if (n <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

/**
 * `minutes`: [{ minute: ISO, finished, completed }] oldest first (metrics --json --detailed's
 * per_minute). Returns an `<svg>` that scales to its box.
 */
export function perMinuteChart(minutes) {
  const max = niceMax(Math.max(0, ...minutes.map((m) => m.finished)));
  const plot = HEIGHT - TOP - BOTTOM;
  const slot = WIDTH / Math.max(1, minutes.length);
  const y = (v) => TOP + plot - (v / max) * plot;
  const bars = minutes.map((m, i) => {
    const failed = Math.max(0, m.finished - m.completed);
    const x = i * slot + 1;
    const w = Math.max(1, slot - 2);
    const label = `${
      localText(new Date(m.minute)).slice(11, 16)
    }: ${m.completed} completed, ${failed} failed`;
    return svg(
      "g",
      { class: "bar" },
      svg("title", {}, label),
      // The whole slot answers the hover, so a minute without attempts has a tooltip too.
      svg("rect", { class: "hit", x: i * slot, y: TOP, width: slot, height: plot }),
      m.completed > 0 &&
        svg("rect", { class: "ok", x, y: y(m.completed), width: w, height: y(0) - y(m.completed) }),
      failed > 0 &&
        svg("rect", {
          class: "fail",
          x,
          y: y(m.finished),
          width: w,
          height: y(m.completed) - y(m.finished),
        }),
    );
  });
  // Labels are HTML below the plot: the plot stretches to any width, text must not.
  return h(
    "figure",
    { class: "chart" },
    svg(
      "svg",
      {
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        preserveAspectRatio: "none",
        role: "img",
        "aria-label": "Attempts finished per minute over the last hour",
      },
      svg("line", { class: "grid", x1: 0, x2: WIDTH, y1: y(max), y2: y(max) }),
      svg("line", { class: "axis", x1: 0, x2: WIDTH, y1: y(0), y2: y(0) }),
      bars,
    ),
    h(
      "figcaption",
      {},
      h("span", {}, "60 min ago"),
      h(
        "span",
        {},
        h("i", { class: "key ok" }),
        "completed ",
        h("i", { class: "key fail" }),
        "failed · top line ",
        `${max}/min`,
      ),
      h("span", {}, "now"),
    ),
  );
}
