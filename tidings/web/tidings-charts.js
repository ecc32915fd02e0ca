// The operator console's live charts: samples of /metrics (Prometheus text, parsed here)
// kept for an hour, drawn as SVG line charts with a y axis labelled with its unit and an x
// axis of time ticks (UTC). With no data yet the axes are drawn all the same, over the last
// minute, with "waiting for data" in the plot.

const HOUR_MS = 3600 * 1000;
const MIN_SPAN_MS = 60 * 1000;
const COLOURS = ["#0b57d0", "#b3261e", "#146c2e", "#8e24aa", "#a15c00", "#00696f"];
const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 180;
const MARGIN = { left: 48, right: 12, top: 24, bottom: 40 };
// Tick spacings of the time axis, the first that gives few enough ticks is used.
const TIME_STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800].map((s) => s * 1000);

/** Samples of the Prometheus text format: [{name, labels, value}] (comments skipped). */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

function total(samples, name, by) {
  const sums = new Map();
  for (const sample of samples) {
    if (sample.name !== name) continue;
    const key = by ? sample.labels[by] || "" : "all";
    sums.set(key, (sums.get(key) || 0) + sample.value);
  }
  return sums;
}

// What each chart shows from one scrape, and in what unit; "rate" charts are per second
// between scrapes, "whole" ones count things (their ticks are whole numbers).
const CHARTS = [
  { id: "connections", title: "Connections now", unit: "connections", whole: true,
    read: (s) => total(s, "tidings_connections") },
  { id: "creates", title: "Creates per second", unit: "notifications/s", rate: true,
    read: (s) => total(s, "tidings_notifications_created_total") },
  { id: "deliveries", title: "Deliveries per second", unit: "deliveries/s", rate: true, read: (s) => {
    const sums = total(s, "tidings_deliveries_total", "medium");
    sums.set("in_app", total(s, "tidings_in_app_deliveries_total").get("all") || 0);
    return sums;
  } },
  { id: "queue", title: "Queue depth by medium", unit: "deliveries waiting", whole: true,
    read: (s) => total(s, "tidings_queue_depth", "medium") },
];

export function format(value) {
  if (Math.abs(value) >= 10000) return `${(value / 1000).toFixed(0)}k`;
  if (Math.abs(value) >= 1000) return `${(value / 1000).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(2)));
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Ticks from 0 to at least `top`: a round step (1, 2, 2.5 or 5 times a power of ten). */
function valueTicks(top, whole) {
  const raw = top / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  if (whole) step = Math.max(1, Math.ceil(step));
  const ticks = [];
  for (let v = 0; v <= top + step / 2; v += step) ticks.push(Number(v.toFixed(6)));
  if (ticks[ticks.length - 1] < top) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function timeTicks(start, end, room) {
  const most = Math.max(2, Math.floor(room / 70));
  const step = TIME_STEPS.find((s) => (end - start) / s <= most) || TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
  const label = (t) => new Date(t).toISOString().slice(11, step < 60000 ? 19 : 16);
  return ticks.map((t) => [t, label(t)]);
}

export class Charts {
  constructor(box, h) {
    this.box = box;
    this.history = new Map(CHARTS.map((chart) => [chart.id, []]));  // id -> [{t, values}]
    this.previous = null;
    for (const chart of CHARTS) {
      chart.now = h("span", { class: "now" }, "…");
      chart.svg = svg("svg", { role: "img", class: "plot" });
      chart.legend = h("div", { class: "legend" });
      box.append(h("div", { class: "chart", "data-chart": chart.id },
        h("h3", {}, chart.title), h("div", { class: "reading" }, chart.now, " ",
          h("span", { class: "unit" }, chart.unit)), chart.svg, chart.legend));
    }
    // The plot is drawn in the pixels it has, so its text keeps its size: again on resize.
    addEventListener("resize", () => this.draw());
  }

  sample(samples, now) {
    for (const chart of CHARTS) {
      const raw = chart.read(samples);
      let values = raw;
      if (chart.rate) {
        if (!this.previous) { chart.last = raw; continue; }
        const seconds = (now - this.previous) / 1000;
        values = new Map([...raw].map(([key, value]) => {
          const before = chart.last.get(key) || 0;
          // A counter that went down was reset (a restart): count from zero.
          return [key, (value >= before ? value - before : value) / seconds];
        }));
        chart.last = raw;
      }
      const points = this.history.get(chart.id);
      points.push({ t: now, values });
      while (points.length && points[0].t < now - HOUR_MS) points.shift();
    }
    this.previous = now;
  }

  draw(now = Date.now()) {
    for (const chart of CHARTS) this.drawOne(chart, this.history.get(chart.id), now);
  }

  drawOne(chart, points, now) {
    const keys = [...new Set(points.flatMap((p) => [...p.values.keys()]))].sort();
    const last = points.length ? points[points.length - 1].values : new Map();
    const sum = [...last.values()].reduce((a, b) => a + b, 0);
    chart.now.textContent = points.length ? format(sum) : "…";
    let highest = 0;
    for (const point of points) for (const value of point.values.values()) highest = Math.max(highest, value);
    const ticks = valueTicks(highest > 0 ? highest : 1, chart.whole);
    const top = ticks[ticks.length - 1];
    const end = points.length ? points[points.length - 1].t : now;
    const start = Math.min(points.length ? points[0].t : end, end - MIN_SPAN_MS);

    const width = Math.max(240, Math.round(chart.svg.clientWidth || 320));
    const plot = { x: MARGIN.left, y: MARGIN.top, w: width - MARGIN.left - MARGIN.right,
                   h: HEIGHT - MARGIN.top - MARGIN.bottom };
    const x = (t) => (plot.x + (t - start) / (end - start) * plot.w).toFixed(1);
    const y = (v) => (plot.y + plot.h - v / top * plot.h).toFixed(1);
    chart.svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    chart.svg.replaceChildren();

    const yAxis = svg("g", { class: "axis y-axis" });
    yAxis.append(svg("text", { class: "axis-title y-title", x: 2, y: 12 }, chart.unit));
    for (const v of ticks) {
      yAxis.append(svg("line", { class: "grid", x1: plot.x, x2: plot.x + plot.w, y1: y(v), y2: y(v) }));
      yAxis.append(svg("text", { class: "tick", x: plot.x - 6, y: y(v), "text-anchor": "end",
                                 "dominant-baseline": "middle" }, format(v)));
    }
    const xAxis = svg("g", { class: "axis x-axis" });
    xAxis.append(svg("line", { class: "base", x1: plot.x, x2: plot.x + plot.w,
                               y1: plot.y + plot.h, y2: plot.y + plot.h }));
    for (const [t, label] of timeTicks(start, end, plot.w)) {
      xAxis.append(svg("line", { class: "base", x1: x(t), x2: x(t), y1: plot.y + plot.h,
                                 y2: plot.y + plot.h + 4 }));
      xAxis.append(svg("text", { class: "tick", x: x(t), y: plot.y + plot.h + 16,
                                 "text-anchor": "middle" }, label));
    }
    xAxis.append(svg("text", { class: "axis-title x-title", x: plot.x + plot.w, y: HEIGHT - 4,
                               "text-anchor": "end" }, "time (UTC)"));
    chart.svg.append(yAxis, xAxis);
    if (!points.length) {
      chart.svg.append(svg("text", { class: "empty", x: plot.x + plot.w / 2, y: plot.y + plot.h / 2,
                                     "text-anchor": "middle" }, "waiting for data"));
    }

    chart.legend.replaceChildren();
    keys.forEach((key, index) => {
      const colour = COLOURS[index % COLOURS.length];
      chart.svg.append(svg("polyline", { stroke: colour, points: points.map((p) =>
        `${x(p.t)},${y(p.values.get(key) || 0)}`).join(" ") }));
      const mark = document.createElement("i");
      mark.style.background = colour;
      const label = key === "all" ? "" : `${key} `;
      const item = document.createElement("span");
      item.append(mark, `${label}${format(last.get(key) || 0)}`);
      chart.legend.append(item);
    });
    const minutes = Math.round((end - start) / 60000);
    chart.svg.setAttribute("aria-label", points.length
      ? `${chart.title}, in ${chart.unit}: now ${format(sum)}, highest ${format(highest)} over the last ${minutes} min`
      : `${chart.title}, in ${chart.unit}: no data yet`);
  }
}
