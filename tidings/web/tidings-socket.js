// A small Socket.IO client for browsers: Engine.IO v4 over WebSocket only, Socket.IO v5
// text framing on namespace "/", acks, the heartbeat, and reconnection with backoff and
// jitter. Binary packets and other namespaces are never used by Tidings (docs/API.md,
// "Protocol conformance"), so they are not implemented.

const OPEN = "0", CLOSE = "1", PING = "2", PONG = "3", MESSAGE = "4", NOOP = "6";
const CONNECT = "0", DISCONNECT = "1", EVENT = "2", ACK = "3", CONNECT_ERROR = "4";

export class TidingsSocket {
  /**
   * @param {string} server  base URL of the Tidings server ("" for this page's origin)
   * @param {() => string} auth  returns the token at each (re)connection
   */
  constructor(server, auth, { minDelay = 500, maxDelay = 15000, ackTimeout = 10000 } = {}) {
    const base = new URL(server || location.origin, location.href);
    base.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    base.pathname = base.pathname.replace(/\/$/, "") + "/socket.io/";
    base.search = "?EIO=4&transport=websocket";
    this.url = base.href;
    this.auth = auth;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.ackTimeout = ackTimeout;
    this.handlers = new Map();
    this.acks = new Map();
    this.nextAck = 0;
    this.attempt = 0;
    this.connected = false;
    this.stopped = true;
    this.ws = null;
    this.timers = { retry: 0, beat: 0 };
  }

  /** Register a handler; reserved names: "connect", "disconnect", "connect_error". */
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
    return this;
  }

  fire(event, ...args) {
    for (const handler of this.handlers.get(event) || []) {
      try { handler(...args); } catch (error) { console.error(error); }
    }
  }

  open() {
    this.stopped = false;
    this.dial();
    return this;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timers.retry);
    this.drop("client close", true);
  }

  /** Emit an event; resolves with the server's acknowledgement (rejects on timeout). */
  emit(event, data) {
    if (!this.connected) return Promise.reject(new Error("not connected"));
    const id = this.nextAck++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error("ack timeout"));
      }, this.ackTimeout);
      this.acks.set(id, (value) => { clearTimeout(timer); resolve(value); });
      this.send(MESSAGE + EVENT + id + JSON.stringify([event, data]));
    });
  }

  send(text) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
  }

  dial() {
    let ws;
    try { ws = new WebSocket(this.url); } catch (error) { this.retry(); return; }
    this.ws = ws;
    ws.onmessage = (message) => { if (this.ws === ws) this.packet(String(message.data)); };
    ws.onclose = () => { if (this.ws === ws) this.drop("transport close"); };
    ws.onerror = () => {};
  }

  // The server pings every pingInterval; silence for pingInterval + pingTimeout means the
  // connection is gone even if the WebSocket has not noticed yet.
  heartbeat() {
    clearTimeout(this.timers.beat);
    this.timers.beat = setTimeout(() => this.drop("ping timeout"), this.beatLimit);
  }

  packet(text) {
    const kind = text[0];
    if (kind === OPEN) {
      const open = JSON.parse(text.slice(1));
      this.beatLimit = open.pingInterval + open.pingTimeout;
      this.heartbeat();
      this.send(MESSAGE + CONNECT + JSON.stringify({ token: this.auth() }));
    } else if (kind === PING) {
      this.heartbeat();
      this.send(PONG);
    } else if (kind === CLOSE) {
      this.drop("server close");
    } else if (kind === MESSAGE) {
      this.message(text.slice(1));
    } else if (kind !== NOOP && kind !== PONG) {
      this.drop("bad packet");
    }
  }

  message(text) {
    const kind = text[0];
    if (kind === CONNECT) {
      this.connected = true;
      this.attempt = 0;
      this.fire("connect");
    } else if (kind === CONNECT_ERROR) {
      const error = JSON.parse(text.slice(1) || "{}");
      this.fire("connect_error", error.message || "refused");
      // A refused token will be refused again: stop until the page supplies another one.
      if (error.message === "Authentication failed") this.stopped = true;
      this.drop("refused");
    } else if (kind === EVENT || kind === ACK) {
      const match = /^(\d*)(.*)$/s.exec(text.slice(1));
      const args = JSON.parse(match[2]);
      if (kind === ACK) {
        const done = this.acks.get(Number(match[1]));
        this.acks.delete(Number(match[1]));
        if (done) done(args[0]);
      } else {
        this.fire(args[0], args[1]);
      }
    } else if (kind === DISCONNECT) {
      this.drop("server disconnect");
    }
  }

  drop(reason, quiet = false) {
    clearTimeout(this.timers.beat);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onmessage = ws.onclose = null;
      try { ws.close(); } catch (error) { /* already closed */ }
    }
    for (const done of this.acks.values()) done({ ok: false, error: { code: "disconnected" } });
    this.acks.clear();
    const was = this.connected;
    this.connected = false;
    if (was && !quiet) this.fire("disconnect", reason);
    if (!this.stopped) this.retry();
  }

  // Exponential backoff with full jitter, so that many tabs do not return together after a
  // server restart.
  retry() {
    clearTimeout(this.timers.retry);
    const cap = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    this.attempt += 1;
    const delay = cap / 2 + Math.random() * cap / 2;
    this.fire("reconnecting", { attempt: this.attempt, delay });
    this.timers.retry = setTimeout(() => { if (!this.stopped) this.dial(); }, delay);
  }
}
