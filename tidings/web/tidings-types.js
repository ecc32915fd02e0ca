// The operator console's types catalogue: the list of /api/admin/types, and a form that
// saves (PUT: the whole type) or deletes one. The type is edited as its JSON body, so
// every field of the contract is reachable; the server judges it and names what is wrong.

const EDITABLE = ["name", "description", "required", "default_media", "escalation", "digest"];

export function startTypes({ api, h, $ }) {
  let cursor = null;

  function summary(t) {
    const names = Object.entries(t.name).map(([locale, text]) => `${locale}: ${text}`).join(", ");
    const digest = t.digest ? `${t.digest.window_seconds} s (${t.digest.key})` : "";
    const steps = t.escalation ? `${t.escalation.length} step(s)` : "";
    return h("tr", { "data-type": `${t.channel}/${t.type}` },
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => edit(t),
                               "aria-label": `Edit ${t.channel}/${t.type}` }, `${t.channel}/${t.type}`)),
      h("td", {}, names), h("td", {}, t.required ? "required" : ""),
      h("td", {}, (t.default_media || ["every medium"]).join(", ")), h("td", {}, digest),
      h("td", {}, steps));
  }

  async function list(more = false) {
    const query = new URLSearchParams({ limit: "50" });
    if (more && cursor) query.set("cursor", cursor);
    const rows = $("types");
    try {
      const page = await api(`/api/admin/types?${query}`);
      if (!more) rows.replaceChildren();
      rows.append(...page.items.map(summary));
      cursor = page.next_cursor;
      $("types-more").hidden = !cursor;
      $("types-status").textContent = rows.children.length ? "" : "No types in the catalogue yet.";
    } catch (error) {
      $("types-status").textContent = `Types unavailable: ${error.message}`;
    }
  }

  function edit(t) {
    const form = $("type-form");
    form.elements.channel.value = t.channel;
    form.elements.type.value = t.type;
    const body = {};
    for (const key of EDITABLE) if (t[key] !== null && t[key] !== undefined) body[key] = t[key];
    form.elements.body.value = JSON.stringify(body, null, 2);
    $("type-status").textContent = `Editing ${t.channel}/${t.type}`;
    form.elements.body.focus();
  }

  function path() {
    const form = $("type-form");
    const channel = form.elements.channel.value.trim();
    const type = form.elements.type.value.trim();
    return `/api/admin/types/${encodeURIComponent(channel)}/${encodeURIComponent(type)}`;
  }

  async function save(event) {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse($("type-form").elements.body.value);
    } catch {
      $("type-status").textContent = "The type must be a JSON object.";
      return;
    }
    try {
      const saved = await api(path(), { method: "PUT", body });
      $("type-status").textContent = `Saved ${saved.channel}/${saved.type}.`;
      list();
    } catch (error) {
      $("type-status").textContent = `Not saved: ${error.message}`;
    }
  }

  async function remove() {
    try {
      await api(path(), { method: "DELETE" });
      $("type-status").textContent = "Deleted.";
      list();
    } catch (error) {
      $("type-status").textContent = `Not deleted: ${error.message}`;
    }
  }

  $("type-form").addEventListener("submit", save);
  $("type-delete").addEventListener("click", remove);
  $("types-more").addEventListener("click", () => list(true));
  list();
}
