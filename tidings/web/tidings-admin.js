// The operator console: live charts from /metrics (Prometheus text, parsed here), the
// deliveries and dead letters of /api/admin/deliveries, one delivery's attempts, and
// replay (one, or by filter after a dry run). Every value from the server goes in as text.

import { probe, signIn } from "./tidings-page.js";
import { startFeeds } from "./tidings-feeds.js";
import { startTypes } from "./tidings-types.js";

const HOUR_MS = 3600 * 1000;
const COLOURS = ["#0b57d0", "#b3261e", "#146c2e", "#8e24aa", "#a15c00", "#00696f"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let token = "";
let metricsToken = "";

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new Error(`${error.message || response.statusText}${error.field ? ` (${error.field})` : ""}`);
  }
  return data;
}

// ---- metrics --------------------------------------------------------------------------

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

// What each chart shows from one scrape; "rate" charts are per second between scrapes.
const CHARTS = [
  { id: "connections", title: "Connections now", read: (s) => total(s, "tidings_connections") },
  { id: "creates", title: "Creates per second", rate: true,
    read: (s) => total(s, "tidings_notifications_created_total") },
  { id: "deliveries", title: "Deliveries per second", rate: true, read: (s) => {
    const sums = total(s, "tidings_deliveries_total", "medium");
    sums.set("in_app", total(s, "tidings_in_app_deliveries_total").get("all") || 0);
    return sums;
  } },
  { id: "queue", title: "Queue depth by medium", read: (s) => total(s, "tidings_queue_depth", "medium") },
];

const history = new Map(CHARTS.map((chart) => [chart.id, []]));  // id -> [{t, values: Map}]
let previous = null;

function sample(samples, now) {
  for (const chart of CHARTS) {
    const raw = chart.read(samples);
    let values = raw;
    if (chart.rate) {
      if (!previous) { chart.last = raw; continue; }
      const seconds = (now - previous) / 1000;
      values = new Map([...raw].map(([key, value]) => {
        const before = chart.last.get(key) || 0;
        // A counter that went down was reset (a restart): count from zero.
        return [key, (value >= before ? value - before : value) / seconds];
      }));
      chart.last = raw;
    }
    const points = history.get(chart.id);
    points.push({ t: now, values });
    while (points.length && points[0].t < now - HOUR_MS) points.shift();
  }
  previous = now;
}

function draw() {
  const box = $("charts");
  if (!box.children.length) {
    for (const chart of CHARTS) {
      chart.now = h("div", { class: "now" }, "…");
      chart.svg = document.createElementNS(SVG, "svg");
      chart.svg.setAttribute("viewBox", "0 0 300 90");
      chart.svg.setAttribute("preserveAspectRatio", "none");
      chart.svg.setAttribute("role", "img");
      chart.legend = h("div", { class: "legend" });
      box.append(h("div", { class: "chart", "data-chart": chart.id },
        h("h3", {}, chart.title), chart.now, chart.svg, chart.legend));
    }
  }
  for (const chart of CHARTS) {
    const points = history.get(chart.id);
    const keys = [...new Set(points.flatMap((p) => [...p.values.keys()]))].sort();
    const last = points.length ? points[points.length - 1].values : new Map();
    const sum = [...last.values()].reduce((a, b) => a + b, 0);
    chart.now.textContent = points.length ? format(sum) : "waiting for a second sample";
    let top = 0;
    for (const point of points) for (const value of point.values.values()) top = Math.max(top, value);
    top = top > 0 ? top * 1.1 : 1;
    const start = points.length ? points[0].t : 0;
    const span = points.length > 1 ? points[points.length - 1].t - start : 1;
    chart.svg.replaceChildren();
    chart.legend.replaceChildren();
    keys.forEach((key, index) => {
      const colour = COLOURS[index % COLOURS.length];
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("stroke", colour);
      line.setAttribute("points", points.map((p) =>
        `${((p.t - start) / span * 300).toFixed(1)},${(88 - (p.values.get(key) || 0) / top * 86).toFixed(1)}`).join(" "));
      chart.svg.append(line);
      const label = key === "all" ? "" : `${key} `;
      chart.legend.append(h("span", {}, h("i", { "data-colour": colour }), `${label}${format(last.get(key) || 0)}`));
    });
    for (const mark of chart.legend.querySelectorAll("i")) mark.style.background = mark.dataset.colour;
    const minutes = Math.round(span / 60000);
    chart.svg.setAttribute("aria-label",
      `${chart.title}: now ${format(sum)}, highest ${format(top / 1.1)} over the last ${minutes} min`);
  }
}

function format(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

async function scrape() {
  const headers = metricsToken ? { Authorization: `Bearer ${metricsToken}` } : {};
  try {
    const response = await fetch("/metrics", { headers });
    if (response.status === 401) throw new Error("/metrics needs METRICS_TOKEN (sign in again with it)");
    if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
    sample(parseMetrics(await response.text()), Date.now());
    $("metrics-status").textContent = `Last sample ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("metrics-status").textContent = `Metrics unavailable: ${error.message}`;
  }
  draw();
}

// ---- deliveries -----------------------------------------------------------------------

let cursor = null;

function filters(form) {
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value) query.set(key, String(value));
  return query;
}

async function list(more = false) {
  const query = filters($("filters"));
  query.set("limit", "20");
  if (more && cursor) query.set("cursor", cursor);
  const rows = $("deliveries");
  try {
    const body = await api(`/api/admin/deliveries?${query}`);
    if (!more) rows.replaceChildren();
    for (const d of body.items) {
      rows.append(h("tr", { "data-id": d.id, "data-status": d.status },
        h("td", {}, h("button", { type: "button", class: "secondary open", onclick: () => detail(d.id),
                                  "aria-label": `Open delivery ${d.id}` }, `#${d.id}`)),
        h("td", {}, d.user_id), h("td", {}, d.medium), h("td", { class: "st" }, d.status),
        h("td", {}, String(d.attempts)), h("td", { class: "mono" }, d.last_error || ""),
        h("td", {}, d.updated_at ? new Date(d.updated_at).toLocaleString() : "")));
    }
    cursor = body.next_cursor;
    $("more").hidden = !cursor;
    $("list-status").textContent = rows.children.length ? `${rows.children.length} shown` : "None found.";
  } catch (error) {
    $("list-status").textContent = `Could not list: ${error.message}`;
  }
}

let shown = null;

function render(d) {
  shown = d;
  const fields = [["Id", d.id], ["Notification", d.notification_id], ["User", d.user_id],
                  ["Medium", d.medium], ["Step", d.step ? `escalation step ${d.step}` : "0 (the create)"],
                  ["Status", d.status], ["Attempts", d.attempts],
                  ["Last error", d.last_error || ""], ["Next attempt", d.next_attempt_at || ""]];
  const attempts = (d.history || []).map((a) => h("tr", {},
    h("td", {}, a.at ? new Date(a.at).toLocaleString() : ""), h("td", {}, a.outcome),
    h("td", {}, a.code || ""), h("td", { class: "mono" }, a.error || ""),
    h("td", {}, a.elapsed_ms == null ? "" : `${a.elapsed_ms} ms`)));
  $("detail-body").replaceChildren(
    h("table", {}, h("tbody", {}, fields.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k),
      h("td", { class: k === "Status" ? "st" : "" }, String(v)))))),
    h("h3", {}, `Attempts (${(d.history || []).length})`),
    h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ["When", "Outcome", "Code", "Error", "Took"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, attempts)));
  $("replay-one").disabled = d.status !== "dead";
  $("detail").hidden = false;
}

async function detail(id) {
  try {
    render(await api(`/api/admin/deliveries/${encodeURIComponent(id)}`));
    $("detail-status").textContent = "";
    $("detail-h").focus();
  } catch (error) {
    $("list-status").textContent = `Could not open #${id}: ${error.message}`;
  }
}

async function replayOne() {
  try {
    render(await api(`/api/admin/deliveries/${shown.id}/replay`, { method: "POST" }));
    $("detail-status").textContent = `Replayed: delivery #${shown.id} is ${shown.status} again.`;
    list();
  } catch (error) {
    $("detail-status").textContent = `Replay refused: ${error.message}`;
  }
}

function bulkBody(dryRun) {
  const body = { status: "dead", dry_run: dryRun };
  for (const [key, value] of new FormData($("bulk"))) if (value) body[key] = String(value);
  return body;
}

let planned = null;

async function bulk(dryRun) {
  const go = $("bulk-go");
  try {
    const body = bulkBody(dryRun);
    if (!dryRun && JSON.stringify({ ...body, dry_run: true }) !== planned) throw new Error("run the dry run again");
    const answer = await api("/api/admin/deliveries/replay", { method: "POST", body });
    const more = answer.more ? " (more remain: repeat for the rest)" : "";
    if (dryRun) {
      planned = JSON.stringify(body);
      go.disabled = answer.count === 0;
      go.textContent = `Replay ${answer.count}`;
      $("bulk-status").textContent = `Dry run: ${answer.count} dead letter(s) would be replayed${more}.`;
    } else {
      planned = null;
      go.disabled = true;
      go.textContent = "Replay";
      $("bulk-status").textContent = `Replayed ${answer.count} dead letter(s)${more}.`;
      list();
    }
  } catch (error) {
    $("bulk-status").textContent = `Could not replay: ${error.message}`;
  }
}

// ---- templates ------------------------------------------------------------------------

async function templates() {
  try {
    const page = await api("/api/admin/templates?limit=100");
    $("templates").replaceChildren(...page.items.map((t) => h("li", {},
      h("button", { type: "button", class: "secondary", "data-key": t.key, onclick: () => {
        $("preview").elements.key.value = t.key;
        $("preview").elements.locale.value = "";
        preview();
      } }, t.key), ` v${t.version} (${t.locales.join(", ")})`)));
    $("templates-status").textContent = page.items.length ? "" : "No templates yet.";
  } catch (error) {
    $("templates-status").textContent = `Templates unavailable: ${error.message}`;
  }
}

// A live preview: each change of the form renders again (after a short pause).
let previewTimer = 0;
async function preview() {
  const form = $("preview");
  const key = form.elements.key.value.trim();
  if (!key) return;
  let variables;
  try {
    variables = JSON.parse(form.elements.variables.value || "{}");
  } catch {
    $("preview-status").textContent = "Variables must be a JSON object.";
    return;
  }
  const body = { variables };
  if (form.elements.locale.value.trim()) body.locale = form.elements.locale.value.trim();
  try {
    const answer = await api(`/api/admin/templates/${encodeURIComponent(key)}/preview`,
      { method: "POST", body });
    $("preview-status").textContent = `Version ${answer.version}, locale ${answer.locale}`;
    $("preview-parts").replaceChildren(...Object.entries(answer.parts).flatMap(([part, text]) =>
      [h("dt", {}, part), h("dd", { "data-part": part }, text)]));
  } catch (error) {
    $("preview-status").textContent = `Cannot preview: ${error.message}`;
    $("preview-parts").replaceChildren();
  }
}

function start(every) {
  $("every").textContent = String(every / 1000);
  $("console").hidden = false;
  scrape();
  setInterval(scrape, every);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); list(); });
  $("more").addEventListener("click", () => list(true));
  $("replay-one").addEventListener("click", replayOne);
  $("detail-h").tabIndex = -1;
  $("bulk").addEventListener("submit", (event) => { event.preventDefault(); bulk(true); });
  $("bulk").addEventListener("input", () => { planned = null; $("bulk-go").disabled = true; });
  $("bulk-go").addEventListener("click", () => bulk(false));
  $("preview").addEventListener("submit", (event) => { event.preventDefault(); preview(); });
  $("preview").addEventListener("input", () => {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, 400);
  });
  list();
  templates();
  startTypes({ api, h, $ });
  startFeeds({ api, h, $ });
}

const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("metrics")) sessionStorage.setItem("tidings.metrics-token", hash.get("metrics"));
// ?every=N samples every N seconds (1-60) instead of 5.
const every = Math.min(60, Math.max(1, Number(new URLSearchParams(location.search).get("every")) || 5)) * 1000;

signIn({
  key: "tidings.admin-token",
  check: async (candidate) => {
    const typed = $("metrics-token").value;
    if (typed) sessionStorage.setItem("tidings.metrics-token", typed);
    await probe("/api/admin/deliveries?limit=1", candidate);
  },
  ready: (accepted) => {
    token = accepted;
    metricsToken = sessionStorage.getItem("tidings.metrics-token") || "";
    start(every);
  },
});
