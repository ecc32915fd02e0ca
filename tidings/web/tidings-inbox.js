// <tidings-inbox token="..." server="https://notify.example.com">: a user's Tidings
// notifications, live. Drop it into any page with
//   <script type="module" src="https://notify.example.com/static/tidings-inbox.js"></script>
// Notification text is only ever inserted as text (text nodes), never parsed as HTML.

import { TidingsSocket } from "./tidings-socket.js";

const MEDIA = [["in_app", "In-app"], ["email", "Email"], ["push", "Push"]];
const PAGE = 20;
const PLATFORMS = { webpush: "Web Push (a browser)", fcm: "Android (FCM)", apns: "Apple (APNs)" };

/** An element with attributes, listeners ("on..." keys) and children (strings are text). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function keyBytes(base64url) {
  const raw = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// pushManager.subscribe needs an active worker; the page is outside the worker's scope, so
// serviceWorker.ready would never settle: wait for this registration's worker instead.
function activated(registration) {
  const worker = registration.installing || registration.waiting || registration.active;
  if (!worker || worker.state === "activated") return Promise.resolve();
  return new Promise((resolve) => worker.addEventListener("statechange", () => {
    if (worker.state === "activated") resolve();
  }));
}

export class TidingsInbox extends HTMLElement {
  static get observedAttributes() { return ["token", "server"]; }

  constructor() {
    super();
    this.notes = new Map();     // id -> notification (ids are UUIDv7: they sort by creation)
    this.unread = 0;
    this.moves = 0;             // changes made to `unread` here: a server count read meanwhile is stale
    this.cursor = null;
    this.loading = false;
    this.newest = null;         // created_at of the newest notification seen
    this.socket = null;
    this.root = this.attachShadow({ mode: "open" });
  }

  get server() { return (this.getAttribute("server") || "").replace(/\/$/, ""); }
  get token() { return this.getAttribute("token") || ""; }

  connectedCallback() { this.start(); }
  disconnectedCallback() { this.stop(); }
  attributeChangedCallback() { if (this.isConnected && this.built) this.start(); }

  stop() {
    if (this.socket) this.socket.close();
    this.socket = null;
    if (this.observer) this.observer.disconnect();
  }

  async api(path, { method = "GET", body } = {}) {
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(this.server + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json().catch(() => undefined);
    if (response.ok && data === undefined) throw new Error(`not a Tidings answer from ${path}`);
    if (!response.ok) {
      const error = (data && data.error) || {};
      const where = error.field ? ` (${error.field})` : "";
      throw Object.assign(new Error((error.message || response.statusText) + where),
                          { status: response.status });
    }
    return data;
  }

  build() {
    this.built = true;
    this.root.replaceChildren();
    const css = h("link", { rel: "stylesheet", href: `${this.server}/static/tidings-inbox.css` });
    this.badge = h("span", { class: "badge", "aria-live": "off" }, "0");
    this.state = h("span", { class: "conn", role: "status" }, "Connecting…");
    this.live = h("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "true" });
    this.notice = h("div", { class: "notice", role: "status" });
    this.list = h("ul", { class: "list", "aria-label": "Notifications", onkeydown: (e) => this.key(e) });
    this.more = h("button", { class: "more", type: "button", onclick: () => this.older() }, "Load more");
    this.empty = h("p", { class: "empty" }, "No notifications yet.");
    this.toast = h("div", { class: "toast", "aria-hidden": "true", hidden: true });
    this.panel = h("section", { class: "settings", hidden: true, "aria-label": "Settings" });
    this.gear = h("button", { type: "button", "aria-expanded": "false",
                              onclick: () => this.toggleSettings() }, "Settings");
    const bar = h("div", { class: "bar" },
      h("h2", {}, "Notifications ", this.badge),
      this.state,
      h("span", { class: "grow" }),
      h("button", { type: "button", class: "mark-all", onclick: () => this.markAll() }, "Mark all read"),
      this.gear);
    this.root.append(css, bar, this.notice, this.panel, this.list, this.empty, this.more,
                     this.live, this.toast);
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.older();
    });
    this.observer.observe(this.more);
  }

  // Each start is a run: one still waiting for its first page when the attributes change
  // again drops what it gets, so the element never holds two sockets or mixed lists.
  async start() {
    this.stop();
    this.build();
    this.run = (this.run || 0) + 1;
    const run = this.run;
    this.notes.clear();
    this.cursor = null;
    this.newest = null;
    this.done = false;
    this.loading = false;
    if (!this.token) { this.setState("Signed out", "off"); return; }
    try {
      await this.page(true);
      if (run !== this.run) return;
    } catch (error) {
      if (run !== this.run) return;
      this.say(`Could not load notifications: ${error.message}`);
      if (error.status === 401) { this.setState("Sign-in refused", "off"); return; }
    }
    this.socket = new TidingsSocket(this.server, () => this.token)
      .on("connect", () => this.setState("Live", "on"))
      .on("connectionStatus", () => this.replay())
      .on("disconnect", () => this.setState("Reconnecting…", "wait"))
      .on("reconnecting", () => this.setState("Reconnecting…", "wait"))
      .on("connect_error", (message) => this.setState(`Refused: ${message}`, "off"))
      .on("notification", (note) => this.arrive(note, true))
      .on("notificationStatus", (status) => this.status(status))
      .on("inboxChanged", (change) => this.changed(change))
      .open();
  }

  setState(text, kind) {
    this.state.textContent = text;
    this.state.dataset.state = kind;
  }

  say(text) {
    this.notice.textContent = text;
  }

  // After every (re)connection: what was created since the newest one seen comes again as
  // `notification` events; arrive() drops those already shown. With nothing seen yet,
  // everything the user has is new to this inbox.
  async replay() {
    const since = this.newest || "1970-01-01T00:00:00Z";
    const answer = await this.socket.emit("requestMissedNotifications", { since })
      .catch(() => null);
    if (answer && answer.ok) this.refreshUnread();
    for (const note of this.notes.values()) this.ack(note);
  }

  older() {
    this.page().catch((error) => this.say(`Could not load older notifications: ${error.message}`));
  }

  async page(first = false) {
    if (!this.token || this.loading || (this.done && !first)) return;
    this.loading = true;
    const run = this.run;
    try {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (this.cursor) query.set("cursor", this.cursor);
      const body = await this.api(`/api/notifications?${query}`);
      if (run !== this.run) return;
      if (first) this.unread = body.unread_count;
      for (const note of body.items) this.arrive(note, false);
      this.cursor = body.next_cursor;
      this.done = !this.cursor;
    } finally {
      if (run === this.run) {
        this.loading = false;
        this.more.hidden = this.done;
        this.paint();
      }
    }
  }

  arrive(note, live) {
    if (!note || !note.id || this.notes.has(note.id)) return;
    this.notes.set(note.id, note);
    if (!this.newest || note.created_at > this.newest) this.newest = note.created_at;
    if (live) {
      if (note.status !== "read") { this.unread += 1; this.moves += 1; }
      this.announce(note);
    }
    this.ack(note);
    this.place(note);
    this.paint();
  }

  // Shown in the inbox is delivered: confirm it (the server answers notificationStatus).
  ack(note) {
    if (note.status === "pending" && this.socket && this.socket.connected) {
      this.socket.emit("ack", { id: note.id }).catch(() => {});
    }
  }

  announce(note) {
    this.live.textContent = `New notification: ${note.title}`;
    this.toast.replaceChildren(h("strong", {}, note.title), h("span", {}, note.message));
    this.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { this.toast.hidden = true; }, 5000);
  }

  // Newest first: an item goes before the first shown item with a smaller id.
  place(note) {
    const item = this.item(note);
    const after = [...this.list.children].find((li) => li.dataset.id < note.id);
    this.list.insertBefore(item, after || null);
    if (!this.list.querySelector("[tabindex='0']")) item.tabIndex = 0;
  }

  item(note) {
    const when = new Date(note.created_at);
    const li = h("li", { class: "item", "data-id": note.id, tabindex: "-1" },
      h("div", { class: "title" }, note.title),
      h("div", { class: "msg" }, note.message),
      h("div", { class: "meta" },
        h("time", { datetime: note.created_at }, when.toLocaleString()),
        ` · ${note.channel} · `, h("span", { class: "status" }, note.status)),
      this.links(note),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "read", onclick: () => this.markRead(note.id) }, "Mark read"),
        h("button", { type: "button", class: "archive", onclick: () => this.archive(note.id) }, "Archive"),
        h("button", { type: "button", class: "delete", onclick: () => this.remove(note.id) }, "Delete")));
    this.style(li, note);
    return li;
  }

  // The notification's link and action buttons; http(s) only (the server accepts no
  // other, and a page never follows a javascript: link whatever it is sent).
  links(note) {
    const web = (url) => typeof url === "string" && /^https?:\/\//i.test(url);
    const links = [];
    if (web(note.url)) links.push(["Open", note.url]);
    for (const action of Array.isArray(note.actions) ? note.actions : []) {
      if (action && web(action.url)) links.push([String(action.label || action.url), action.url]);
    }
    if (!links.length) return null;
    return h("div", { class: "links" }, links.map(([label, url]) =>
      h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label)));
  }

  style(li, note) {
    const read = note.status === "read";
    li.classList.toggle("unread", !read);
    li.dataset.status = note.status;
    li.querySelector(".status").textContent = note.status;
    li.querySelector(".read").hidden = read;
  }

  node(id) {
    return [...this.list.children].find((li) => li.dataset.id === id) || null;
  }

  status(change) {
    const note = this.notes.get(change.id);
    if (!note) { this.refreshUnread(); return; }
    const was = note.status === "read";
    Object.assign(note, change);
    const now = note.status === "read";
    if (was !== now) { this.unread += now ? -1 : 1; this.moves += 1; }
    const li = this.node(note.id);
    if (li) this.style(li, note);
    this.paint();
  }

  // Another tab or device changed the inbox. An action not known here is ignored (more
  // are to come); one heard twice changes nothing. An item not loaded here may still have
  // been counted unread: the server's count is asked for then.
  changed(change) {
    if (!change) return;
    if ((change.action === "deleted" || change.action === "archived") && Array.isArray(change.ids)) {
      const unknown = change.ids.filter((id) => !this.drop(id));
      if (unknown.length) this.refreshUnread();
    } else if (change.action === "read_all") {
      this.readAll(change);
    } else if (change.action === "unarchived") {
      this.refreshUnread();
    }
  }

  // Every unread item shown of the change's channel and type, visible by its instant,
  // is read now (the server sent no status event per item).
  readAll(change) {
    const before = change.before ? Date.parse(change.before) : Infinity;
    for (const note of this.notes.values()) {
      if (note.status === "read") continue;
      if (change.channel && note.channel !== change.channel) continue;
      if (change.type && note.type !== change.type) continue;
      if (Date.parse(note.scheduled_at || note.created_at) > before) continue;
      this.status({ id: note.id, status: "read", read_at: change.before || null });
    }
    this.refreshUnread();
  }

  // The server's count, unless the count moved here while it was asked for (a live
  // notification committed after the server counted): then ask again, a few times.
  async refreshUnread() {
    for (let tries = 0; tries < 3; tries += 1) {
      const moves = this.moves;
      const body = await this.api("/api/notifications?limit=1").catch(() => null);
      if (!body) return;
      if (moves === this.moves) { this.unread = body.unread_count; this.paint(); return; }
    }
  }

  paint() {
    this.unread = Math.max(0, this.unread);
    this.badge.textContent = String(this.unread);
    this.badge.setAttribute("aria-label", `${this.unread} unread`);
    this.badge.hidden = this.unread === 0;
    this.empty.hidden = this.notes.size > 0 || this.loading;
    this.dispatchEvent(new CustomEvent("tidings-unread", { detail: { unread: this.unread } }));
  }

  async markRead(id) {
    try {
      this.status(await this.api(`/api/notifications/${encodeURIComponent(id)}/read`, { method: "PUT" }));
    } catch (error) { this.say(`Could not mark read: ${error.message}`); }
  }

  // One call; every tab (this one too) hears `inboxChanged` read_all and restyles.
  async markAll() {
    try {
      await this.api("/api/notifications/read-all", { method: "POST", body: {} });
      this.readAll({ before: new Date().toISOString() });
      this.say("All marked read.");
    } catch (error) { this.say(`Could not mark all read: ${error.message}`); }
  }

  async archive(id) {
    try {
      await this.api(`/api/notifications/${encodeURIComponent(id)}/archive`, { method: "POST" });
    } catch (error) {
      if (error.status !== 404) { this.say(`Could not archive: ${error.message}`); return; }
    }
    this.drop(id);
  }

  async remove(id) {
    try {
      await this.api(`/api/notifications/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch (error) {
      if (error.status !== 404) { this.say(`Could not delete: ${error.message}`); return; }
    }
    this.drop(id);
  }

  // The item leaves the list (deleted here or elsewhere); the list's tab stop, and the
  // focus if it was there, move to a neighbour. False if the item was not shown.
  drop(id) {
    const note = this.notes.get(id);
    if (!note) return false;
    const li = this.node(id);
    if (note.status !== "read") { this.unread -= 1; this.moves += 1; }
    this.notes.delete(id);
    if (li) {
      const next = li.nextElementSibling || li.previousElementSibling;
      const focused = this.root.activeElement && li.contains(this.root.activeElement);
      const stop = li.tabIndex === 0;
      li.remove();
      if (next && (stop || focused)) {
        const other = this.list.querySelector("[tabindex='0']");
        if (other) other.tabIndex = -1;
        next.tabIndex = 0;
        if (focused) next.focus();
      }
    }
    this.paint();
    return true;
  }

  // Roving focus over the list: arrows, Home and End move; Enter marks read; Delete deletes.
  key(event) {
    const li = event.target.closest && event.target.closest("li.item");
    if (!li || event.target !== li) return;
    const items = [...this.list.children];
    const at = items.indexOf(li);
    const go = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
    if (go !== undefined) {
      event.preventDefault();
      const target = items[Math.max(0, Math.min(items.length - 1, go))];
      li.tabIndex = -1;
      target.tabIndex = 0;
      target.focus();
      if (go >= items.length - 1 && !this.done) this.older();
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.markRead(li.dataset.id);
    } else if (event.key === "Delete") {
      event.preventDefault();
      this.remove(li.dataset.id);
    }
  }

  toggleSettings() {
    const open = this.panel.hidden;
    this.panel.hidden = !open;
    this.gear.setAttribute("aria-expanded", String(open));
    if (open) this.settings();
  }

  async settings() {
    const prefs = h("div", {}, "Loading preferences…");
    const quiet = h("div");
    const devices = h("div");
    this.panel.replaceChildren(h("h3", {}, "Preferences"), prefs, h("h3", {}, "Quiet hours"), quiet,
                               h("h3", {}, "Devices"), devices);
    await Promise.all([this.preferences(prefs), this.quietHours(quiet), this.devices(devices)]);
  }

  async preferences(box) {
    let items;
    try { items = (await this.api("/api/notifications/preferences")).items; }
    catch (error) { box.textContent = `Could not load preferences: ${error.message}`; return; }
    if (!items.length) {
      items = [{ channel: "*", notification_type: "*", in_app_enabled: true, email_enabled: true, push_enabled: true }];
    }
    const rows = items.map((pref) => h("tr", {},
      h("th", { scope: "row" }, pref.channel), h("td", {}, pref.notification_type),
      MEDIA.map(([medium, label]) => h("td", {}, h("input", {
        type: "checkbox", checked: pref[`${medium}_enabled`],
        "aria-label": `${label} for channel ${pref.channel}, type ${pref.notification_type}`,
        onchange: (event) => this.savePreference(pref, medium, event.target),
      })))));
    const channel = h("input", { "aria-label": "Channel", placeholder: "channel or *", size: "12" });
    const kind = h("input", { "aria-label": "Type", placeholder: "type or *", size: "12" });
    const add = h("form", { class: "add", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await this.api("/api/notifications/preferences", { method: "PUT", body: {
          channel: channel.value || "*", notification_type: kind.value || "*" } });
        this.preferences(box);
      } catch (error) { this.say(`Could not add: ${error.message}`); }
    } }, channel, kind, h("button", { type: "submit" }, "Add rule"));
    box.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, ["Channel", "Type", ...MEDIA.map((m) => m[1])].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)), add);
  }

  async savePreference(pref, medium, input) {
    try {
      await this.api("/api/notifications/preferences", { method: "PUT", body: {
        channel: pref.channel, notification_type: pref.notification_type,
        [`${medium}_enabled`]: input.checked } });
      pref[`${medium}_enabled`] = input.checked;
      this.say("Preference saved.");
    } catch (error) {
      input.checked = !input.checked;
      this.say(`Could not save: ${error.message}`);
    }
  }

  async quietHours(box) {
    let contact = null;
    try { contact = await this.api("/api/users/me/contact"); }
    catch (error) { if (error.status !== 404) { box.textContent = error.message; return; } }
    const hours = (contact && contact.quiet_hours) || {};
    const start = h("input", { type: "time", value: hours.start || "", "aria-label": "Quiet hours start" });
    const end = h("input", { type: "time", value: hours.end || "", "aria-label": "Quiet hours end" });
    const save = async (quiet) => {
      try {
        await this.api("/api/users/me/contact", { method: "PUT", body: { quiet_hours: quiet } });
        this.say(quiet ? "Quiet hours saved." : "Quiet hours cleared.");
      } catch (error) { this.say(`Could not save quiet hours: ${error.message}`); }
    };
    box.replaceChildren(h("form", { class: "add", onsubmit: (event) => {
      event.preventDefault();
      save(start.value && end.value ? { start: start.value, end: end.value } : null);
    } }, "From ", start, " to ", end,
      ` (${(contact && contact.timezone) || "UTC"}) `,
      h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", onclick: () => { start.value = end.value = ""; save(null); } }, "Clear")));
  }

  async devices(box) {
    let items = [];
    try { items = (await this.api("/api/devices")).items; }
    catch (error) { box.textContent = error.message; return; }
    const list = h("ul", { class: "devices" }, items.map((device) => h("li", {},
      `${PLATFORMS[device.platform] || device.platform}, added ${new Date(device.created_at).toLocaleString()}`,
      device.disabled_at ? " (disabled)" : "", " ",
      h("button", { type: "button", class: "remove", onclick: async () => {
        try { await this.api(`/api/devices/${device.id}`, { method: "DELETE" }); this.devices(box); }
        catch (error) { this.say(`Could not remove: ${error.message}`); }
      } }, "Remove"))));
    const push = await this.pushButton(box);
    box.replaceChildren(items.length ? list : h("p", {}, "No devices."), ...(push ? [push] : []));
  }

  // Web Push needs the server's VAPID key (null when not configured) and a service worker
  // of the page's own origin, so it is offered only where both exist.
  async pushButton(box) {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) return null;
    const origin = new URL(this.server || location.origin, location.href).origin;
    if (origin !== location.origin) return null;
    let key;
    try { key = (await this.api("/api/push/vapid-public-key")).public_key; } catch (error) { return null; }
    if (!key) return null;
    return h("button", { type: "button", class: "push", onclick: async () => {
      try {
        if (await Notification.requestPermission() !== "granted") throw new Error("permission denied");
        const registration = await navigator.serviceWorker.register(
          `${this.server}/static/tidings-sw.js`, { scope: `${this.server}/static/` });
        await activated(registration);
        const subscription = await registration.pushManager.subscribe({
          userVisibleOnly: true, applicationServerKey: keyBytes(key) });
        await this.api("/api/devices", { method: "POST",
          body: { platform: "webpush", subscription: subscription.toJSON() } });
        this.say("Push enabled in this browser.");
        this.devices(box);
      } catch (error) { this.say(`Could not enable push: ${error.message}`); }
    } }, "Enable push in this browser");
  }
}

if (!customElements.get("tidings-inbox")) customElements.define("tidings-inbox", TidingsInbox);
