// The operator console's connections: GET /api/admin/connections, every node's open
// sockets and whose they are (the users with most sockets first, at most 200 per node, with
// the node's total), read again with each sample of the charts.

import { utc } from "./tidings-page.js";

function count(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function startConnections({ api, h, $ }) {
  function node(n) {
    const listed = n.users.length < n.users_total ? `; the ${n.users.length} with most sockets listed` : "";
    const rows = n.users.map((u) => h("tr", { "data-user": u.user_id },
      h("td", { class: "token" }, u.user_id), h("td", { class: "num" }, String(u.sockets))));
    return h("div", { class: "node", "data-node": n.node },
      h("table", { class: "users" },
        h("caption", {}, h("span", { class: "token" }, n.node),
          h("span", { class: "sub" }, `${count(n.connections, "socket")}, ${count(n.users_total, "user")}${listed}`)),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "User"),
                                    h("th", { scope: "col", class: "num" }, "Sockets"))),
        h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 2, class: "none" }, "No sockets open.")))));
  }

  async function refresh() {
    try {
      const body = await api("/api/admin/connections");
      const partial = body.partial ? " (this node only: the other nodes could not be read from Redis)" : "";
      $("connections-status").textContent =
        `${count(body.connections, "socket")} on ${count(body.nodes.length, "node")}${partial}, as of ${utc(new Date())}`;
      $("connections").replaceChildren(...body.nodes.map(node));
    } catch (error) {
      $("connections-status").textContent = `Connections unavailable: ${error.message}`;
    }
  }

  $("connections-refresh").addEventListener("click", refresh);
  return refresh;  // the console calls it with each sample of the charts
}
