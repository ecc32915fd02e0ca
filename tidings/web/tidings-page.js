// Sign-in shared by /inbox and /admin: a token pasted in the form or given as `#token=`
// in the URL (removed from the address bar at once), kept in this tab's sessionStorage.

function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (error) { return {}; }
}

/**
 * Shows the sign-in form until `check(token)` accepts a token (it throws with a message
 * otherwise), then calls `ready(token, claims)`.
 */
export function signIn({ key, check, ready }) {
  const form = document.getElementById("sign-in");
  const input = document.getElementById("token");
  const error = document.getElementById("sign-in-error");
  const who = document.getElementById("who");
  const out = document.getElementById("sign-out");
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem(key, hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  out.addEventListener("click", () => { sessionStorage.removeItem(key); location.reload(); });

  async function attempt(token) {
    try {
      await check(token);
    } catch (failure) {
      sessionStorage.removeItem(key);
      error.textContent = `Sign-in failed: ${failure.message}`;
      form.hidden = false;
      input.focus();
      return;
    }
    sessionStorage.setItem(key, token);
    form.hidden = true;
    out.hidden = false;
    const sub = claims(token).sub;
    who.textContent = sub ? `Signed in as ${sub}` : "";
    ready(token, claims(token));
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    attempt(input.value.trim());
  });
  const stored = sessionStorage.getItem(key);
  if (stored) attempt(stored);
  else { form.hidden = false; input.focus(); }
}

/**
 * An instant as the pages show it, one format everywhere: `2026-12-07 14:03:12 UTC`
 * ("" for a missing or unreadable value).
 */
export function utc(value) {
  const date = value instanceof Date ? value : new Date(value ?? NaN);
  if (Number.isNaN(date.getTime())) return "";
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A `<time>` showing `utc(value)`, with the ISO instant in `datetime` and `title`. */
export function timeElement(value) {
  const node = document.createElement("time");
  const shown = utc(value);
  if (shown) {
    node.dateTime = new Date(value).toISOString();
    node.title = node.dateTime;
    node.textContent = shown;
  }
  return node;
}

/** Throws with the server's message unless `path` answers 2xx to this token. */
export async function probe(path, token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) return response;
  const body = await response.json().catch(() => ({}));
  throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
}

if (document.body.dataset.page === "inbox") {
  signIn({
    key: "tidings.token",
    check: (token) => probe("/api/notifications?limit=1", token),
    ready: (token) => {
      const slot = document.getElementById("inbox-slot");
      const inbox = document.createElement("tidings-inbox");
      // The inbox page is the list looked at: open, in the page's flow. The bell still
      // closes it, and while it is closed new ones count on the bell.
      inbox.setAttribute("layout", "page");
      inbox.setAttribute("open", "");
      inbox.setAttribute("token", token);
      slot.replaceChildren(inbox);
      slot.hidden = false;
      inbox.addEventListener("tidings-unread", (event) => {
        document.title = event.detail.unread ? `(${event.detail.unread}) Tidings inbox` : "Tidings inbox";
      });
    },
  });
}
