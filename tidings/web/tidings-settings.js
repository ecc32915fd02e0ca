// The inbox's Settings panel: preferences (channel × type × medium), quiet hours, devices
// and Web Push. Loaded by <tidings-inbox> only when Settings is first opened, so a page
// that embeds the bell does not download it.

import { h } from "./tidings-inbox.js";

const MEDIA = [["in_app", "In-app"], ["email", "Email"], ["push", "Push"]];
const PLATFORMS = { webpush: "Web Push (a browser)", fcm: "Android (FCM)", apns: "Apple (APNs)" };

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

/** Fills `panel` with the settings of the inbox's user (`inbox.api`, `inbox.say`). */
export async function showSettings(inbox, panel) {
  const prefs = h("div", {}, "Loading preferences…");
  const quiet = h("div");
  const devices = h("div");
  panel.replaceChildren(h("h3", {}, "Preferences"), prefs, h("h3", {}, "Quiet hours"), quiet,
                        h("h3", {}, "Devices"), devices);
  await Promise.all([preferences(inbox, prefs), quietHours(inbox, quiet), deviceList(inbox, devices)]);
}

async function preferences(inbox, box) {
  let items;
  try { items = (await inbox.api("/api/notifications/preferences")).items; }
  catch (error) { box.textContent = `Could not load preferences: ${error.message}`; return; }
  if (!items.length) {
    items = [{ channel: "*", notification_type: "*", in_app_enabled: true, email_enabled: true, push_enabled: true }];
  }
  const rows = items.map((pref) => h("tr", {},
    h("th", { scope: "row" }, pref.channel), h("td", {}, pref.notification_type),
    MEDIA.map(([medium, label]) => h("td", {}, h("input", {
      type: "checkbox", checked: pref[`${medium}_enabled`],
      "aria-label": `${label} for channel ${pref.channel}, type ${pref.notification_type}`,
      onchange: (event) => savePreference(inbox, pref, medium, event.target),
    })))));
  const channel = h("input", { "aria-label": "Channel", placeholder: "channel or *", size: "12" });
  const kind = h("input", { "aria-label": "Type", placeholder: "type or *", size: "12" });
  const add = h("form", { class: "add", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await inbox.api("/api/notifications/preferences", { method: "PUT", body: {
        channel: channel.value || "*", notification_type: kind.value || "*" } });
      preferences(inbox, box);
    } catch (error) { inbox.say(`Could not add: ${error.message}`); }
  } }, channel, kind, h("button", { type: "submit" }, "Add rule"));
  box.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, ["Channel", "Type", ...MEDIA.map((m) => m[1])].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows)), add);
}

async function savePreference(inbox, pref, medium, input) {
  try {
    await inbox.api("/api/notifications/preferences", { method: "PUT", body: {
      channel: pref.channel, notification_type: pref.notification_type,
      [`${medium}_enabled`]: input.checked } });
    pref[`${medium}_enabled`] = input.checked;
    inbox.say("Preference saved.");
  } catch (error) {
    input.checked = !input.checked;
    inbox.say(`Could not save: ${error.message}`);
  }
}

async function quietHours(inbox, box) {
  let contact = null;
  try { contact = await inbox.api("/api/users/me/contact"); }
  catch (error) { if (error.status !== 404) { box.textContent = error.message; return; } }
  const hours = (contact && contact.quiet_hours) || {};
  const start = h("input", { type: "time", value: hours.start || "", "aria-label": "Quiet hours start" });
  const end = h("input", { type: "time", value: hours.end || "", "aria-label": "Quiet hours end" });
  const save = async (quiet) => {
    try {
      await inbox.api("/api/users/me/contact", { method: "PUT", body: { quiet_hours: quiet } });
      inbox.say(quiet ? "Quiet hours saved." : "Quiet hours cleared.");
    } catch (error) { inbox.say(`Could not save quiet hours: ${error.message}`); }
  };
  box.replaceChildren(h("form", { class: "add", onsubmit: (event) => {
    event.preventDefault();
    save(start.value && end.value ? { start: start.value, end: end.value } : null);
  } }, "From ", start, " to ", end,
    ` (${(contact && contact.timezone) || "UTC"}) `,
    h("button", { type: "submit" }, "Save"),
    h("button", { type: "button", onclick: () => { start.value = end.value = ""; save(null); } }, "Clear")));
}

async function deviceList(inbox, box) {
  let items = [];
  try { items = (await inbox.api("/api/devices")).items; }
  catch (error) { box.textContent = error.message; return; }
  const list = h("ul", { class: "devices" }, items.map((device) => h("li", {},
    `${PLATFORMS[device.platform] || device.platform}, added ${new Date(device.created_at).toLocaleString()}`,
    device.disabled_at ? " (disabled)" : "", " ",
    h("button", { type: "button", class: "remove", onclick: async () => {
      try { await inbox.api(`/api/devices/${device.id}`, { method: "DELETE" }); deviceList(inbox, box); }
      catch (error) { inbox.say(`Could not remove: ${error.message}`); }
    } }, "Remove"))));
  const push = await pushButton(inbox, box);
  box.replaceChildren(items.length ? list : h("p", {}, "No devices."), ...(push ? [push] : []));
}

// Web Push needs the server's VAPID key (null when not configured) and a service worker
// of the page's own origin, so it is offered only where both exist.
async function pushButton(inbox, box) {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return null;
  const origin = new URL(inbox.server || location.origin, location.href).origin;
  if (origin !== location.origin) return null;
  let key;
  try { key = (await inbox.api("/api/push/vapid-public-key")).public_key; } catch (error) { return null; }
  if (!key) return null;
  return h("button", { type: "button", class: "push", onclick: async () => {
    try {
      if (await Notification.requestPermission() !== "granted") throw new Error("permission denied");
      const registration = await navigator.serviceWorker.register(
        `${inbox.server}/static/tidings-sw.js`, { scope: `${inbox.server}/static/` });
      await activated(registration);
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true, applicationServerKey: keyBytes(key) });
      await inbox.api("/api/devices", { method: "POST",
        body: { platform: "webpush", subscription: subscription.toJSON() } });
      inbox.say("Push enabled in this browser.");
      deviceList(inbox, box);
    } catch (error) { inbox.say(`Could not enable push: ${error.message}`); }
  } }, "Enable push in this browser");
}
