// <tidings-inbox token="..." server="https://notify.example.com">: a user's Tidings
// notifications, live, behind a bell. Drop it into any page with
//   <script type="module" src="https://notify.example.com/static/tidings-inbox.js"></script>
// Attributes: `open` (the panel starts open), `layout="page"` (the panel sits in the page's
// flow instead of dropping down from the bell). Notification text is only ever inserted
// as text (text nodes), never parsed as HTML.

import { TidingsSocket } from "./tidings-socket.js";
import { fullTime, relativeTime, usableLanguage } from "./tidings-time.js";

const PAGE = 20;
const BELL = "M12 22a2.4 2.4 0 0 0 2.4-2.4H9.6A2.4 2.4 0 0 0 12 22Zm7.2-6V11a7.2 7.2 0 0 0-5.4-7V3.3a1.8 " +
  "1.8 0 0 0-3.6 0V4a7.2 7.2 0 0 0-5.4 7v5l-2 2v1.2h18.4V18Z";

/** An element with attributes, listeners ("on..." keys) and children (strings are text). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function bellIcon() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", BELL);
  svg.append(path);
  return svg;
}

// Only http(s) links are followed (the server accepts no other, and a page never follows a
// javascript: link whatever it is sent).
const web = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

export class TidingsInbox extends HTMLElement {
  static get observedAttributes() { return ["token", "server"]; }

  constructor() {
    super();
    this.notes = new Map();     // id -> notification shown (ids are UUIDv7: they sort by creation)
    this.heard = new Set();     // ids counted here, shown or not: a replayed one is not counted twice
    this.unread = 0;            // both counts are of the inbox (archived ones are not counted)
    this.unseen = 0;
    this.moves = 0;             // changes made to the counts here: a server count read meanwhile is stale
    this.view = "inbox";        // or "archived"
    this.socket = null;
    this.root = this.attachShadow({ mode: "open" });
    this.root.addEventListener("keydown", (event) => this.escape(event));
    this.onVisible = () => this.markSeen();
    this.onOutside = (event) => {
      if (this.popover && this.isOpen && !event.composedPath().includes(this)) this.setOpen(false);
    };
  }

  get server() { return (this.getAttribute("server") || "").replace(/\/$/, ""); }
  get token() { return this.getAttribute("token") || ""; }
  get popover() { return this.getAttribute("layout") !== "page"; }
  get language() {
    const marked = this.closest("[lang]");
    return usableLanguage((marked && marked.lang) || navigator.language);
  }

  connectedCallback() { this.start(); }
  disconnectedCallback() { this.stop(); }
  attributeChangedCallback() { if (this.isConnected && this.built) this.start(); }

  stop() {
    if (this.socket) this.socket.close();
    this.socket = null;
    if (this.observer) this.observer.disconnect();
    clearInterval(this.clock);
    document.removeEventListener("visibilitychange", this.onVisible);
    document.removeEventListener("pointerdown", this.onOutside);
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
    this.badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
    this.bell = h("button", { type: "button", class: "bell", "aria-controls": "panel",
                              onclick: () => this.setOpen(!this.isOpen) }, bellIcon(), this.badge);
    this.state = h("span", { class: "conn", role: "status" }, "Connecting…");
    this.live = h("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "true" });
    this.notice = h("div", { class: "notice", role: "status" });
    this.list = h("ul", { class: "list", "aria-label": "Notifications", onkeydown: (e) => this.key(e) });
    this.more = h("button", { class: "more", type: "button", onclick: () => this.older() }, "Load more");
    this.empty = h("p", { class: "empty" });
    this.toast = h("div", { class: "toast", "aria-hidden": "true", hidden: true });
    this.settingsBox = h("section", { class: "settings", hidden: true, "aria-label": "Settings" });
    this.gear = h("button", { type: "button", class: "quiet", "aria-expanded": "false",
                              onclick: () => this.toggleSettings() }, "Settings");
    this.markAllButton = h("button", { type: "button", class: "quiet mark-all", onclick: () => this.markAll(),
                                       hidden: this.view !== "inbox" }, "Mark all read");
    this.views = { inbox: "Inbox", archived: "Archived" };
    const tabs = Object.entries(this.views).map(([view, label]) => h("button", {
      type: "button", class: `view view-${view}`, "aria-pressed": String(view === this.view),
      onclick: () => this.setView(view) }, label));
    this.panel = h("section", { class: "panel", id: "panel", "aria-label": "Notifications" },
      h("div", { class: "bar" }, h("h2", {}, "Notifications"), this.state, h("span", { class: "grow" }),
        this.markAllButton, this.gear),
      h("div", { class: "views", role: "group", "aria-label": "Show" }, tabs),
      this.notice, this.settingsBox, this.list, this.empty, this.more);
    this.root.append(css, this.bell, this.panel, this.live, this.toast);
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.older();
    });
    this.observer.observe(this.more);
    this.showOpen(this.hasAttribute("open"));
  }

  // Each start is a run: one still waiting for its first page when the attributes change
  // again drops what it gets, so the element never holds two sockets or mixed lists.
  async start() {
    this.stop();
    this.build();
    this.run = (this.run || 0) + 1;
    const run = this.run;
    this.heard.clear();
    this.newest = null;
    this.unread = this.unseen = 0;
    document.addEventListener("visibilitychange", this.onVisible);
    document.addEventListener("pointerdown", this.onOutside);
    this.clock = setInterval(() => this.tick(), 60 * 1000);
    if (!this.token) { this.setState("Signed out", "off"); this.paint(); return; }
    try {
      await this.reload();
      if (run !== this.run) return;
    } catch (error) {
      if (run !== this.run) return;
      this.say(`Could not load notifications: ${error.message}`);
      if (error.status === 401) { this.setState("Sign-in refused", "off"); return; }
    }
    this.markSeen();
    this.socket = new TidingsSocket(this.server, () => this.token)
      .on("connect", () => this.setState("Live", "on"))
      .on("connectionStatus", () => this.replay())
      .on("disconnect", () => this.setState("Reconnecting…", "wait"))
      .on("reconnecting", () => this.setState("Reconnecting…", "wait"))
      .on("connect_error", (message) => this.setState(`Not connected: ${message}`, "off"))
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

  // The panel opened is the list looked at: what it holds is seen (POST .../seen, which
  // every other tab hears as `inboxChanged` seen), and the bell's badge clears.
  setOpen(open, refocus = false) {
    this.showOpen(open);
    if (open) this.markSeen();
    else if (refocus) this.bell.focus();
  }

  showOpen(open) {
    this.isOpen = open;
    this.toggleAttribute("open", open);
    this.panel.hidden = !open;
    this.bell.setAttribute("aria-expanded", String(open));
    // Dropped down towards the wider side, so a bell at the page's left edge does not
    // open its panel off the screen.
    const box = this.bell.getBoundingClientRect();
    this.panel.classList.toggle("from-left", box.left + box.width / 2 < innerWidth / 2);
  }

  escape(event) {
    if (event.key === "Escape" && this.popover) { event.preventDefault(); this.setOpen(false, true); }
  }

  // Seen only by someone looking: the panel open in a tab in front.
  looking() {
    return this.isOpen && document.visibilityState === "visible";
  }

  markSeen() {
    if (!this.looking() || this.unseen === 0 || !this.token) return;
    this.unseen = 0;
    this.moves += 1;
    for (const note of this.notes.values()) note.seen_at = note.seen_at || new Date().toISOString();
    this.paint();
    this.api("/api/notifications/seen", { method: "POST", body: {} })
      .catch((error) => this.say(`Could not mark as seen: ${error.message}`));
  }

  setView(view) {
    if (view === this.view) return;
    this.view = view;
    for (const button of this.root.querySelectorAll(".view")) {
      button.setAttribute("aria-pressed", String(button.classList.contains(`view-${view}`)));
    }
    this.markAllButton.hidden = view !== "inbox";
    this.reload().catch((error) => this.say(`Could not load notifications: ${error.message}`));
  }

  // The first page of the view shown; a page still coming for an earlier view is dropped.
  async reload() {
    this.shown = (this.shown || 0) + 1;
    this.notes.clear();
    this.list.replaceChildren();
    this.cursor = null;
    this.done = false;
    this.loading = false;
    await this.page(true);
  }

  // After every (re)connection: what was created since the newest one seen comes again as
  // `notification` events; arrive() drops those already counted. With nothing seen yet,
  // everything the user has is new to this inbox.
  async replay() {
    const since = this.newest || "1970-01-01T00:00:00Z";
    const answer = await this.socket.emit("requestMissedNotifications", { since })
      .catch(() => null);
    if (answer && answer.ok) this.refreshCounts();
    for (const note of this.notes.values()) this.ack(note);
  }

  older() {
    this.page().catch((error) => this.say(`Could not load older notifications: ${error.message}`));
  }

  async page(first = false) {
    if (!this.token || this.loading || (this.done && !first)) return;
    this.loading = true;
    const shown = this.shown;
    try {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (this.cursor) query.set("cursor", this.cursor);
      if (this.view === "archived") query.set("archived", "true");
      const body = await this.api(`/api/notifications?${query}`);
      if (shown !== this.shown) return;
      if (first && this.view === "inbox") { this.unread = body.unread_count; this.unseen = body.unseen_count; }
      for (const note of body.items) this.arrive(note, false);
      this.cursor = body.next_cursor;
      this.done = !this.cursor;
    } finally {
      if (shown === this.shown) {
        this.loading = false;
        this.more.hidden = this.done;
        this.paint();
      }
    }
  }

  belongs(note) {
    return Boolean(note.archived_at) === (this.view === "archived");
  }

  arrive(note, live) {
    if (!note || !note.id || this.notes.has(note.id) || (live && this.heard.has(note.id))) return;
    this.heard.add(note.id);
    if (!this.newest || note.created_at > this.newest) this.newest = note.created_at;
    if (live) {
      if (note.status !== "read") this.unread += 1;
      if (!note.seen_at && this.looking()) {
        note.seen_at = new Date().toISOString();
        this.api("/api/notifications/seen", { method: "POST", body: { ids: [note.id] } }).catch(() => {});
      } else if (!note.seen_at) this.unseen += 1;
      this.moves += 1;
      this.announce(note);
    }
    if (!this.belongs(note)) { this.paint(); return; }
    this.notes.set(note.id, note);
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
    if (this.looking() && this.view === "inbox") return;  // it shows in the open list already
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
    const titleId = `t-${note.id}`;
    const title = web(note.url)
      ? h("a", { class: "title", id: titleId, href: note.url, target: "_blank", rel: "noopener noreferrer",
                 onclick: () => this.opened(note) }, note.title)
      : h("span", { class: "title", id: titleId }, note.title);
    const about = { "aria-describedby": titleId };
    const actions = (Array.isArray(note.actions) ? note.actions : [])
      .filter((action) => action && web(action.url))
      .map((action, n) => h("a", { class: n === 0 ? "action primary" : "action", href: action.url,
                                   target: "_blank", rel: "noopener noreferrer",
                                   onclick: () => this.opened(note) }, String(action.label || action.url)));
    const archived = Boolean(note.archived_at);
    const li = h("li", { class: "item", "data-id": note.id, tabindex: "-1", "aria-labelledby": titleId },
      h("span", { class: "dot", "aria-hidden": "true" }),
      h("div", { class: "body" },
        h("div", { class: "head" }, h("span", { class: "sr-only unread-label" }, "Unread: "), title,
          h("time", { datetime: this.when(note), title: fullTime(new Date(this.when(note)), this.language) },
            relativeTime(new Date(this.when(note)), new Date(), this.language))),
        h("div", { class: "msg" }, note.message),
        actions.length ? h("div", { class: "actions" }, actions) : null,
        h("div", { class: "controls" },
          h("button", { type: "button", class: "quiet read", ...about, onclick: () => this.markRead(note.id) },
            "Mark read"),
          h("button", { type: "button", class: archived ? "quiet unarchive" : "quiet archive", ...about,
                        onclick: () => this.archive(note.id, !archived) }, archived ? "Move to inbox" : "Archive"),
          h("button", { type: "button", class: "quiet delete", ...about, onclick: () => this.remove(note.id) },
            "Delete"))));
    this.style(li, note);
    return li;
  }

  // The instant it reached the inbox: a scheduled one came when it was due.
  when(note) {
    return note.scheduled_at && note.scheduled_at > note.created_at ? note.scheduled_at : note.created_at;
  }

  // Every minute "just now" becomes "1 minute ago", and so on.
  tick() {
    const now = new Date();
    for (const time of this.list.querySelectorAll("li.item time")) {
      time.textContent = relativeTime(new Date(time.dateTime), now, this.language);
    }
  }

  opened(note) {
    if (note.status !== "read") this.markRead(note.id);
  }

  style(li, note) {
    const read = note.status === "read";
    li.classList.toggle("unread", !read);
    li.dataset.status = note.status;
    li.querySelector(".unread-label").hidden = read;
    li.querySelector(".read").hidden = read;
  }

  node(id) {
    return [...this.list.children].find((li) => li.dataset.id === id) || null;
  }

  status(change) {
    const note = this.notes.get(change.id);
    if (!note) { this.refreshCounts(); return; }
    const was = note.status === "read";
    Object.assign(note, change);
    const now = note.status === "read";
    if (was !== now && this.view === "inbox") { this.unread += now ? -1 : 1; this.moves += 1; }
    const li = this.node(note.id);
    if (li) this.style(li, note);
    this.paint();
  }

  // Another tab or device changed the inbox. An action not known here is ignored (more
  // are to come); one heard twice changes nothing. An item not loaded here may still have
  // been counted: the server's counts are asked for then.
  changed(change) {
    if (!change) return;
    const ids = Array.isArray(change.ids) ? change.ids : [];
    if (change.action === "deleted") {
      if (ids.filter((id) => !this.drop(id)).length) this.refreshCounts();
    } else if (change.action === "archived" || change.action === "unarchived") {
      this.moved(ids, change.action === "archived");
    } else if (change.action === "read_all") {
      this.readAll(change);
    } else if (change.action === "seen") {
      this.seen(change, ids);
    }
  }

  seen(change, ids) {
    const now = change.before || new Date().toISOString();
    let unknown = !ids.length;
    for (const id of ids) {
      const note = this.notes.get(id);
      if (!note) { unknown = true; continue; }
      if (!note.seen_at && this.view === "inbox") { this.unseen -= 1; this.moves += 1; }
      note.seen_at = note.seen_at || now;
    }
    if (change.before) for (const note of this.notes.values()) note.seen_at = note.seen_at || now;
    this.paint();
    if (unknown) this.refreshCounts();
  }

  // Archived or brought back (here or elsewhere): it leaves the view it was in and joins
  // the other if that one is shown.
  async moved(ids, archived) {
    for (const id of ids) {
      if (!this.drop(id)) {
        const shown = this.shown;
        const note = await this.api(`/api/notifications/${encodeURIComponent(id)}`).catch(() => null);
        if (note && shown === this.shown && Boolean(note.archived_at) === archived) this.arrive(note, false);
      }
    }
    this.refreshCounts();
  }

  // Every unread item shown of the change's channel and type, visible by its instant,
  // is read now (the server sent no status event per item).
  readAll(change) {
    const before = change.before ? Date.parse(change.before) : Infinity;
    for (const note of this.notes.values()) {
      if (note.status === "read") continue;
      if (change.channel && note.channel !== change.channel) continue;
      if (change.type && note.type !== change.type) continue;
      if (Date.parse(this.when(note)) > before) continue;
      this.status({ id: note.id, status: "read", read_at: change.before || null });
    }
    this.refreshCounts();
  }

  // The server's counts, unless they moved here while asked for (a live notification
  // committed after the server counted): then ask again, a few times.
  async refreshCounts() {
    for (let tries = 0; tries < 3; tries += 1) {
      const moves = this.moves;
      const body = await this.api("/api/notifications?limit=1").catch(() => null);
      if (!body) return;
      if (moves === this.moves) {
        this.unread = body.unread_count;
        this.unseen = body.unseen_count;
        this.paint();
        this.markSeen();
        return;
      }
    }
  }

  paint() {
    this.unread = Math.max(0, this.unread);
    this.unseen = Math.max(0, this.unseen);
    this.badge.textContent = this.unseen > 99 ? "99+" : String(this.unseen);
    this.badge.hidden = this.unseen === 0;
    this.bell.setAttribute("aria-label", this.unseen ? `Notifications, ${this.unseen} new` : "Notifications");
    this.empty.textContent = this.view === "inbox" ? "You're all caught up." : "Nothing archived.";
    this.empty.hidden = this.notes.size > 0 || this.loading;
    this.dispatchEvent(new CustomEvent("tidings-unread", { detail: { unread: this.unread, unseen: this.unseen } }));
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

  async archive(id, archived) {
    const path = `/api/notifications/${encodeURIComponent(id)}/${archived ? "archive" : "unarchive"}`;
    try {
      await this.api(path, { method: "POST" });
    } catch (error) {
      if (error.status !== 404) { this.say(`Could not ${archived ? "archive" : "move"}: ${error.message}`); return; }
    }
    this.drop(id);
    if (!archived) this.refreshCounts();
  }

  async remove(id) {
    try {
      await this.api(`/api/notifications/${encodeURIComponent(id)}`, { method: "DELETE" });
    } catch (error) {
      if (error.status !== 404) { this.say(`Could not delete: ${error.message}`); return; }
    }
    this.drop(id);
  }

  // The item leaves the list (deleted, archived or brought back, here or elsewhere); the
  // list's tab stop, and the focus if it was there, move to a neighbour. False if the
  // item was not shown.
  drop(id) {
    const note = this.notes.get(id);
    if (!note) return false;
    const li = this.node(id);
    if (this.view === "inbox") {
      if (note.status !== "read") this.unread -= 1;
      if (!note.seen_at) this.unseen -= 1;
      this.moves += 1;
    }
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

  // Roving focus over the list: arrows, Home and End move; Enter opens the focused item
  // (its link, if it has one) and marks it read; Delete deletes it.
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
      const link = li.querySelector("a.title");
      if (link) link.click();
      else this.markRead(li.dataset.id);
    } else if (event.key === "Delete") {
      event.preventDefault();
      this.remove(li.dataset.id);
    }
  }

  async toggleSettings() {
    const open = this.settingsBox.hidden;
    this.settingsBox.hidden = !open;
    this.gear.setAttribute("aria-expanded", String(open));
    if (!open) return;
    try {
      const { showSettings } = await import("./tidings-settings.js");
      await showSettings(this, this.settingsBox);
    } catch (error) { this.say(`Could not open settings: ${error.message}`); }
  }
}

if (!customElements.get("tidings-inbox")) customElements.define("tidings-inbox", TidingsInbox);
