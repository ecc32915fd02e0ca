// The operator console: live charts from /metrics (`tidings-charts.js`), who is connected
// (`tidings-connections.js`), the deliveries and dead letters of /api/admin/deliveries, one
// delivery's attempts, and replay (one, or by filter after a dry run). Every value from the
// server goes in as text; every instant is shown as `utc()` writes it.

import { probe, signIn, timeElement, utc } from "./tidings-page.js";
import { Charts, parseMetrics } from "./tidings-charts.js";
import { startConnections } from "./tidings-connections.js";
import { startFeeds } from "./tidings-feeds.js";
import { startTypes } from "./tidings-types.js";

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

export { parseMetrics };
let charts = null;
let refreshConnections = () => {};

async function scrape() {
  const headers = metricsToken ? { Authorization: `Bearer ${metricsToken}` } : {};
  try {
    const response = await fetch("/metrics", { headers });
    if (response.status === 401) throw new Error("/metrics needs METRICS_TOKEN (sign in again with it)");
    if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
    charts.sample(parseMetrics(await response.text()), Date.now());
    $("metrics-status").textContent = `Last sample ${utc(new Date())}`;
  } catch (error) {
    $("metrics-status").textContent = `Metrics unavailable: ${error.message}`;
  }
  charts.draw();
  refreshConnections();
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
        h("td", { class: "token" }, d.user_id ?? "(team feed)"), h("td", { class: "nowrap" }, d.medium),
        h("td", { class: "st" }, d.status), h("td", { class: "num" }, String(d.attempts)),
        h("td", { class: "text" }, d.last_error || ""), h("td", { class: "when" }, timeElement(d.updated_at))));
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
  // [label, value, class of its cell]
  const fields = [["Id", String(d.id), "token"], ["Notification", d.notification_id, "token"],
                  ["User", d.user_id ?? "(team feed)", "token"], ["Medium", d.medium, ""],
                  ["Step", d.step ? `escalation step ${d.step}` : "0 (the create)", ""],
                  ["Status", d.status, "st"], ["Attempts", String(d.attempts), ""],
                  ["Last error", d.last_error || "", "text"],
                  ["Next attempt", d.next_attempt_at ? timeElement(d.next_attempt_at) : "", "when"],
                  ["Updated", timeElement(d.updated_at), "when"]];
  const attempts = (d.history || []).map((a) => h("tr", {},
    h("td", { class: "when" }, timeElement(a.at)), h("td", {}, a.outcome),
    h("td", { class: "nowrap" }, a.code || ""), h("td", { class: "text" }, a.error || ""),
    h("td", { class: "num" }, a.elapsed_ms == null ? "" : `${a.elapsed_ms} ms`)));
  $("detail-body").replaceChildren(
    h("table", { class: "fields" }, h("tbody", {}, fields.map(([k, v, cls]) => h("tr", {},
      h("th", { scope: "row" }, k), h("td", { class: cls }, v))))),
    h("h3", {}, `Attempts (${(d.history || []).length})`),
    h("div", { class: "scroll" }, h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ["When", "Outcome", "Code", "Error", "Took"].map((t) =>
        h("th", { scope: "col", class: t === "Took" ? "num" : "" }, t)))),
      h("tbody", {}, attempts))));
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
    $("templates").replaceChildren(...page.items.map((t) => h("tr", { "data-template": t.key },
      h("td", {}, h("button", { type: "button", class: "secondary", "data-key": t.key,
                               "aria-label": `Preview ${t.key}`, onclick: () => {
        $("preview").elements.key.value = t.key;
        $("preview").elements.locale.value = "";
        preview();
      } }, t.key)), h("td", { class: "num" }, String(t.version)),
      h("td", {}, t.locales.join(", ")), h("td", { class: "when" }, timeElement(t.updated_at)))));
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
  charts = new Charts($("charts"), h);
  charts.draw();
  refreshConnections = startConnections({ api, h, $ });
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
  startFeeds({ api, h, $, timeElement });
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
