// The operator console's team feeds: the list of /api/admin/feeds (each webhook URL shown
// by its origin only: the server never sends it whole again), a form that sets or replaces
// a channel's feed (PUT), and a Delete button on each row. The server judges every value
// and names what is wrong; nothing here repeats its rules.

const KINDS = { slack: "Slack", discord: "Discord", teams: "Microsoft Teams", mattermost: "Mattermost" };

export function startFeeds({ api, h, $, timeElement }) {
  let cursor = null;

  function path(channel) {
    return `/api/admin/channels/${encodeURIComponent(channel)}/feed`;
  }

  function row(feed) {
    return h("tr", { "data-channel": feed.channel },
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => edit(feed),
                               "aria-label": `Edit the feed of ${feed.channel}` }, feed.channel)),
      h("td", {}, KINDS[feed.kind] || feed.kind),
      h("td", { class: "url" }, feed.webhook_url),
      h("td", { class: "when" }, timeElement(feed.updated_at)),
      h("td", {}, h("button", { type: "button", class: "secondary delete", onclick: () => remove(feed.channel),
                               "aria-label": `Delete the feed of ${feed.channel}` }, "Delete")));
  }

  async function list(more = false) {
    const query = new URLSearchParams({ limit: "50" });
    if (more && cursor) query.set("cursor", cursor);
    const rows = $("feeds");
    try {
      const page = await api(`/api/admin/feeds?${query}`);
      if (!more) rows.replaceChildren();
      rows.append(...page.items.map(row));
      cursor = page.next_cursor;
      $("feeds-more").hidden = !cursor;
      $("feeds-status").textContent = rows.children.length ? "" : "No team feeds yet.";
    } catch (error) {
      $("feeds-status").textContent = `Team feeds unavailable: ${error.message}`;
    }
  }

  // The URL cannot be shown again (the list has its origin only): editing keeps the channel
  // and kind and asks for the URL anew.
  function edit(feed) {
    const form = $("feed-form");
    form.elements.channel.value = feed.channel;
    form.elements.kind.value = feed.kind;
    form.elements.webhook_url.value = "";
    $("feed-status").textContent = `Replacing the feed of ${feed.channel}: enter its webhook URL.`;
    form.elements.webhook_url.focus();
  }

  async function save(event) {
    event.preventDefault();
    const form = $("feed-form");
    const channel = form.elements.channel.value.trim();
    // "." and ".." would be dropped from the path by the browser before the server sees them.
    if (channel === "." || channel === "..") {
      $("feed-status").textContent = "Not saved: a channel name starts with a letter or digit (channel)";
      return;
    }
    const body = { kind: form.elements.kind.value, webhook_url: form.elements.webhook_url.value.trim() };
    try {
      const saved = await api(path(channel), { method: "PUT", body });
      form.elements.webhook_url.value = "";
      $("feed-status").textContent = `Saved: ${saved.channel} posts to ${KINDS[saved.kind] || saved.kind}.`;
      list();
    } catch (error) {
      $("feed-status").textContent = `Not saved: ${error.message}`;
    }
  }

  async function remove(channel) {
    try {
      await api(path(channel), { method: "DELETE" });
      $("feed-status").textContent = `Deleted the feed of ${channel}.`;
    } catch (error) {
      $("feed-status").textContent = `Not deleted: ${error.message}`;
    }
    // The row's button goes with its row: keep the focus in the section.
    $("feeds-h").focus();
    list();
  }

  $("feeds-h").tabIndex = -1;
  $("feed-form").addEventListener("submit", save);
  $("feeds-more").addEventListener("click", () => list(true));
  list();
}
