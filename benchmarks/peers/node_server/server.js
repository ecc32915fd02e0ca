// Reference peer: the same routing as Tidings' real-time path, nothing else.
// Room user:<sub> joined on connect after the JWT check; POST /api/notifications emits
// `notification` to user:<user_id> (201) or, without user_id, to channel:<channel> (202);
// `subscribe` joins channel:<name>. No persistence: PEER_HISTORY=1 keeps an in-memory
// list per user only so the `recovery` scenario can be exercised against a peer.
"use strict";
const http = require("http");
const crypto = require("crypto");
const jwt = require("jsonwebtoken");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || 3101);
const host = process.env.HOST || "127.0.0.1";
const secret = process.env.JWT_SECRET || "bench-secret-for-loopback-load-tests-only";
// A KeyObject made once: given a string, jsonwebtoken 9 builds one per call (~0.45 ms,
// 30x the verification itself), which would make this peer look far slower than it is.
const secretKey = crypto.createSecretKey(Buffer.from(secret));
const keepHistory = process.env.PEER_HISTORY === "1";
const history = new Map(); // user -> [notification]

function verify(token) {
  try {
    const claims = jwt.verify(token || "", secretKey, { algorithms: ["HS256"] });
    return typeof claims.sub === "string" ? claims : null;
  } catch (e) {
    return null;
  }
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

const httpServer = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/api/notifications") return answer(res, 404, { error: "not found" });
  const claims = verify((req.headers.authorization || "").replace(/^Bearer /, ""));
  if (!claims) return answer(res, 401, { error: "unauthorized" });
  const roles = claims.roles || [];
  if (!roles.includes("service") && !roles.includes("admin")) return answer(res, 403, { error: "forbidden" });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch (e) {
      return answer(res, 422, { error: "invalid JSON" });
    }
    const n = {
      id: crypto.randomUUID(),
      user_id: body.user_id || null,
      type: body.type,
      title: body.title,
      message: body.message,
      channel: body.channel || "default",
      priority: body.priority || "medium",
      status: "pending",
      scheduled_at: null,
      created_at: new Date().toISOString(),
      delivered_at: null,
      read_at: null,
      data: body.data || {},
    };
    if (body.user_id) {
      if (keepHistory) {
        if (!history.has(n.user_id)) history.set(n.user_id, []);
        history.get(n.user_id).push(n);
      }
      io.to(`user:${n.user_id}`).emit("notification", n);
      return answer(res, 201, n);
    }
    const room = `channel:${n.channel}`;
    const members = io.of("/").adapter.rooms.get(room);
    io.to(room).emit("notification", n);
    return answer(res, 202, { count: members ? members.size : 0 });
  });
});

const io = new Server(httpServer, { transports: ["websocket"], perMessageDeflate: false, serveClient: false });

io.use((socket, next) => {
  const claims = verify(socket.handshake.auth && socket.handshake.auth.token);
  if (!claims) return next(new Error("Authentication failed"));
  socket.data.user = claims.sub;
  next();
});

io.on("connection", (socket) => {
  const user = socket.data.user;
  socket.join(`user:${user}`);
  socket.emit("connectionStatus", { status: "connected", user_id: user });
  socket.on("subscribe", (payload, ack) => {
    const channels = (payload && Array.isArray(payload.channels) ? payload.channels : []).filter(
      (c) => typeof c === "string" && /^[A-Za-z0-9_.:-]{1,64}$/.test(c)
    );
    for (const c of channels) socket.join(`channel:${c}`);
    if (typeof ack === "function") ack({ ok: true, subscribed: channels, denied: [] });
  });
  socket.on("requestMissedNotifications", (payload, ack) => {
    const since = Date.parse((payload && payload.since) || "") || 0;
    const missed = (history.get(user) || []).filter((n) => Date.parse(n.created_at) > since);
    for (const n of missed) socket.emit("notification", n);
    if (typeof ack === "function") ack({ ok: true, count: missed.length });
  });
});

httpServer.listen(port, host, () => console.log(`node peer listening on ${host}:${port}`));
